package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// What a Slurm user reaches for first works on a real `hpcd dev`: history
// of given jobs whenever they ended and running ones too (sacct -j),
// sacct's short state names and -S/-E, usage of one account by user
// (sreport's Accounts=), and eff of a job still running says what it
// holds instead of zero efficiencies.
func TestAccountingAsSlurmUsersExpect(t *testing.T) {
	c := startCluster(t)
	okID := c.submit(c.writeJob("ok.hcl", `job "ok" {
  account  = "physics"
  walltime = "1m"
  task { script = "true" }
}`), "--wait")
	if _, _, code := c.hpcsub("submit", "--wait", c.writeJob("bad.hcl", `job "bad" {
  account  = "bio"
  walltime = "1m"
  task { script = "exit 3" }
}`)); code != 3 {
		t.Fatalf("bad job: exit %d, want 3", code)
	}
	badID := okID + 1
	runID := c.submit(c.writeJob("run.hcl", `job "run" {
  account  = "bio"
  walltime = "5m"
  resources { cpus = 1 }
  task { script = "sleep 300" }
}`))
	c.waitState(runID, 30*time.Second, api.StateRunning)
	defer c.hpcsub("cancel", fmt.Sprint(runID))

	ids := func(args ...string) ([]uint64, string, int) {
		t.Helper()
		out, errOut, code := c.hpcsub(append([]string{"history", "--json"}, args...)...)
		if code != 0 {
			return nil, errOut, code
		}
		var jobs []api.Job
		mustJSON(t, out, &jobs)
		var got []uint64
		for _, j := range jobs {
			got = append(got, j.ID)
		}
		return got, errOut, code
	}
	all := fmt.Sprintf("%d-%d", okID, runID)
	tests := []struct {
		args []string
		want []uint64
	}{
		{[]string{"-j", all}, []uint64{okID, badID, runID}}, // the running job too
		{[]string{"--jobs", fmt.Sprintf("%d,%d", runID, okID)}, []uint64{runID, okID}},
		{[]string{"-j", all, "-s", "F"}, []uint64{badID}},
		{[]string{"-j", all, "-A", "bio"}, []uint64{badID, runID}},
		{[]string{"-j", all, "-A", "bio", "--limit", "1"}, []uint64{badID}},
		{[]string{"-j", all, "-S", "2000-01-01", "-E", "2000-01-02"}, nil}, // a window, when given, applies
		{[]string{"-s", "cd,to"}, []uint64{okID}},
		{[]string{"-S", "2000-01-01", "-E", "2000-01-02"}, nil},
	}
	for _, tt := range tests {
		got, errOut, code := ids(tt.args...)
		if code != 0 || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("history %v = %v (exit %d %s), want %v", tt.args, got, code, errOut, tt.want)
		}
	}
	out, errOut, code := c.hpcsub("history", "-j", fmt.Sprintf("%d,999", okID))
	if code != 1 || !strings.Contains(errOut, "no job 999") || !strings.Contains(out, "ok") {
		t.Errorf("history of a job that does not exist: exit %d, %q, table:\n%s", code, errOut, out)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if _, errOut, code := c.hpcsubAs(nobody, "history", "-j", fmt.Sprint(okID)); code != 1 || !strings.Contains(errOut, "private") {
		t.Errorf("nobody's history of root's job: exit %d, %q", code, errOut)
	}

	out, errOut, code = c.hpcsub("usage", "--by", "user", "-A", "bio", "--json")
	var rep api.UsageReport
	if code != 0 {
		t.Fatalf("usage -A bio: exit %d: %s", code, errOut)
	}
	mustJSON(t, out, &rep)
	if len(rep.Rows) != 1 || rep.Rows[0].Key != "root" || rep.Rows[0].Jobs != 1 {
		t.Errorf("usage of bio by user: %+v, want root with 1 ended job", rep.Rows)
	}
	if _, errOut, code := c.hpcsubAs(nobody, "usage", "-u", "root"); code != 1 || !strings.Contains(errOut, "only admins") {
		t.Errorf("nobody's usage of root: exit %d, %q", code, errOut)
	}

	arrID := c.submit(c.writeJob("arr.hcl", `job "arr" {
  walltime = "1m"
  array { count = 2 }
  task { script = "true" }
}`), "--wait")
	out, errOut, code = c.hpcsub("eff", fmt.Sprintf("%d_1", arrID)) // seff takes array elements
	if code != 0 || !strings.Contains(out, "(arr[1])") || !strings.Contains(out, "COMPLETED") {
		t.Errorf("eff of an array element: exit %d %s:\n%s", code, errOut, out)
	}
	// sprio -u / -A / -l: a job waiting for the running one's CPU.
	pendID := c.submit(c.writeJob("pend.hcl", `job "pend" {
  account  = "physics"
  walltime = "1m"
  resources { cpus = 2 }
  task { script = "true" }
}`))
	defer c.hpcsub("cancel", fmt.Sprint(pendID))
	c.waitState(pendID, 10*time.Second, api.StatePending)
	for _, tt := range []struct {
		args []string
		want []uint64
	}{
		{nil, []uint64{pendID}},
		{[]string{"-A", "physics"}, []uint64{pendID}},
		{[]string{"-A", "bio"}, nil},
		{[]string{"-u", "nobody"}, nil},
	} {
		out, errOut, code := c.hpcsub(append([]string{"priority", "--json"}, tt.args...)...)
		var rep api.PriorityReport
		if code != 0 {
			t.Fatalf("priority %v: exit %d: %s", tt.args, code, errOut)
		}
		mustJSON(t, out, &rep)
		var got []uint64
		for _, j := range rep.Jobs {
			got = append(got, j.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("priority %v: jobs %v, want %v", tt.args, got, tt.want)
		}
	}
	if out, _, _ := c.hpcsub("priority", "-l"); !strings.Contains(out, "FS-FACTOR") || !strings.Contains(out, fmt.Sprint(pendID)) {
		t.Errorf("priority -l:\n%s", out)
	}

	out, _, code = c.hpcsub("eff", fmt.Sprint(runID))
	if code != 0 || !strings.Contains(out, "running for:") || strings.Contains(out, "efficiency:") || strings.Contains(out, "0B") {
		t.Errorf("eff of a running job: exit %d:\n%s", code, out)
	}
}
