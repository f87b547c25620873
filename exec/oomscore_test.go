package exec

import (
	osexec "os/exec"
	"testing"
)

// TestJobOOMScore: a job does not inherit its supervisor's OOM score of
// -1000 (it would be unkillable at its memory limit, and the OOM killer's
// last pick in a global OOM), nor the right to set -1000 again itself;
// through the shim and through the spawner.
func TestJobOOMScore(t *testing.T) {
	requireRoot(t)
	if err := osexec.Command("sh", "-c", "echo -1 > /proc/self/oom_score_adj").Run(); err != nil {
		t.Skip("this host refuses to lower an OOM score (a sandbox): supervisors keep 0 and so do their jobs")
	}
	check := func(t *testing.T) {
		te := newTestExecutor(t, "")
		if viaSpawner(t) && te.sp == nil {
			t.Skip("no spawner on this host")
		}
		s := te.spec("cat /proc/self/oom_score_adj; echo -1000 > /proc/self/oom_score_adj 2>/dev/null; cat /proc/self/oom_score_adj")
		if o := te.run(t, s); o.State != StateCompleted {
			t.Fatalf("job: %+v", o)
		}
		if got := readFile(t, s.Stdout); got != "0\n0\n" {
			t.Errorf("job's OOM score, then after it set -1000 itself:\n%s want 0 and 0", got)
		}
	}
	t.Run("shim", check)
	t.Run("spawner/check", check)
}
