package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// Issue 6 and the adversarial review: a user's limits and the submit
// policy hold for whatever one request (or one hpcsub call) carries:
// a 100,000-element held array, several files, a raised priority or
// someone else's account, all from uid 65534 through a real hpcd dev.
func TestSubmitLimitsAndPolicyAsNobody(t *testing.T) {
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	array := func(n int, extra string) string {
		return fmt.Sprintf("job \"a\" {\n  walltime = \"1m\"\n%s  array {\n    count = %d\n  }\n  task { script = \"true\" }\n}\n", extra, n)
	}
	nobodysJobs := func(c *cluster) int {
		out, errOut, code := c.hpcsub("queue", "--all", "--json")
		if code != 0 {
			t.Fatalf("queue: exit %d: %s", code, errOut)
		}
		return strings.Count(out, `"user":"nobody"`) + strings.Count(out, `"user": "nobody"`)
	}

	c := startCluster(t) // the default limits
	for _, tc := range []struct {
		name, src, want string
		args            []string
	}{
		{"held 100,000-element array", array(100000, ""), "at most 10000 per array", []string{"--hold"}},
		{"priority 1000", array(1, "  priority = 1000\n"), "only admins may raise", nil},
		{"account root", array(1, "  account = \"root\"\n"), "is not one of your groups", nil},
	} {
		file := c.writeJob(strings.ReplaceAll(tc.name, " ", "-")+".hcl", tc.src)
		out, errOut, code := c.hpcsubAs(nobody, append(append([]string{"submit"}, tc.args...), file)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s as nobody: exit %d: %s%s, want a refusal saying %q", tc.name, code, out, errOut, tc.want)
		}
	}
	if n := nobodysJobs(c); n != 0 {
		t.Fatalf("nobody has %d jobs after refused submits, want 0", n)
	}

	// Several files in one hpcsub call: each counts against the user's queue.
	c = startCluster(t, "--max-queued-per-user", "5")
	a, b := c.writeJob("a.hcl", array(3, "")), c.writeJob("b.hcl", array(3, ""))
	out, errOut, code := c.hpcsubAs(nobody, "submit", "--hold", a, b)
	if code == 0 || !strings.Contains(errOut, "at most 5 per user may wait") {
		t.Fatalf("two 3-element arrays in one call, limit 5: exit %d: %s%s, want the second refused", code, out, errOut)
	}
	if n := nobodysJobs(c); n != 3 {
		t.Fatalf("nobody has %d jobs, want the first file's 3", n)
	}
}
