package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// viaSpawner says whether a test's executor launches through the spawner:
// the shim's tests run again as subtests of TestSpawnerKeepsTheShimsGuarantees,
// whose names hold "/spawner/".
func viaSpawner(t *testing.T) bool {
	return strings.Contains(t.Name(), "/spawner/")
}

// spawnerCheck runs check as the subtest "spawner/check", whose executor
// launches through the spawner (viaSpawner); it is skipped on a host no
// spawner serves.
func spawnerCheck(t *testing.T, check func(t *testing.T, te *testExec)) {
	t.Helper()
	t.Run("spawner/check", func(t *testing.T) {
		te := newTestExecutor(t, "")
		if te.sp == nil {
			t.Skip("no spawner on this host")
		}
		check(t, te)
	})
}

// spawnerIdentity reads the pid file of the executor's live spawner.
func (te *testExec) spawnerIdentity(t *testing.T) procIdentity {
	t.Helper()
	var id procIdentity
	if err := readJSON(filepath.Join(te.sp.dir, spawnerPID), &id); err != nil {
		t.Fatal(err)
	}
	return id
}

// outcomeOnDisk reports whether a job's outcome is durable: its shim's
// result file, or an outcome in the spawner's journal.
func outcomeOnDisk(e *Executor, id uint64) bool {
	if _, err := os.Stat(filepath.Join(e.jobDir(id), resultFile)); err == nil {
		return true
	}
	b, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, spawnerDirName, spawnerJournal))
	for _, line := range strings.Split(string(b), "\n") {
		var je journalEntry
		if json.Unmarshal([]byte(line), &je) == nil && je.Op == "E" && je.ID == id {
			return true
		}
	}
	return false
}

// procCgroup is the v1 cgroup path of pid in controller ctrl.
func procCgroup(t *testing.T, pid int, ctrl string) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, fmt.Sprintf("/proc/%d/cgroup", pid)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == ctrl {
				return f[2]
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup", pid, ctrl)
	return ""
}

// TestSpawnerKeepsTheShimsGuarantees runs the shim's tests again with every
// job launched through the node's spawner instead.
func TestSpawnerKeepsTheShimsGuarantees(t *testing.T) {
	requireRoot(t)
	if detectIsolation() != IsolationV1 {
		t.Skip("the spawner serves cgroup v1 hosts")
	}
	for _, tt := range []struct {
		name string
		test func(*testing.T)
	}{
		{"RunOutcomes", TestRunOutcomes},
		{"AsUser", TestAsUser},
		{"OutputNotWritableAsUser", TestOutputNotWritableAsUser},
		{"OutputFIFORefused", TestOutputFIFORefused},
		{"OutOfMemory", TestOutOfMemory},
		{"Walltime", TestWalltime},
		{"WarnSignal", TestWarnSignal},
		{"CancelTree", TestCancelTree},
		{"RootRefused", TestRootRefused},
		{"LaunchTwiceRefused", TestLaunchTwiceRefused},
		{"CgroupV1Limits", TestCgroupV1Limits},
		{"LeaseFence", TestLeaseFence},
		{"AdoptAfterAgentKill", TestAdoptAfterAgentKill},
		{"LaunchOnFullDiskFails", TestLaunchOnFullDiskFails},
	} {
		t.Run("spawner/"+tt.name, tt.test)
	}
}

// TestSpawnerJobsHaveNoShim: a job of the spawner is its child, in a slot
// of the executor's cgroup parent, with no state directory of its own.
func TestSpawnerJobsHaveNoShim(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		s := te.spec("sleep 300")
		h, err := te.Launch(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		id := te.spawnerIdentity(t)
		if _, ppid, _, err := procStat(h.PID()); err != nil || ppid != id.PID {
			t.Errorf("job's parent %d (%v), want the spawner %d", ppid, err, id.PID)
		}
		if cg := procCgroup(t, h.PID(), "memory"); !strings.HasPrefix(cg, "/"+te.parent+"/slot-") {
			t.Errorf("job in memory cgroup %s, want a slot under %s", cg, te.parent)
		}
		if _, err := os.Stat(te.jobDir(s.JobID)); err == nil {
			t.Errorf("a spawner job has a state directory")
		}
		h.Cancel("test over")
		if o := wait(t, h); o.State != StateCancelled {
			t.Errorf("outcome %+v, want CANCELLED", o)
		}
	})
}

// TestSpawnerKilled: a kill -9 of the spawner kills its jobs, and they end
// FAILED as the host's failure, as when a shim dies; the outcome is
// durable (a later adoption reads the same).
func TestSpawnerKilled(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		s := te.spec("sleep 300 & sleep 300")
		h, err := te.Launch(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "job processes", func() bool { return len(jobProcesses(s.JobID)) >= 2 })
		id := te.spawnerIdentity(t)
		if err := unix.Kill(id.PID, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		checkSupervisorDeath(t, te, h, s.JobID, "supervisor")
		// The new spawner still launches.
		if o := te.run(t, te.spec("true")); o.State != StateCompleted {
			t.Errorf("after the spawner's death: %+v", o)
		}
	})
}

// TestSpawnerSlotReuse: a slot reused after a job that used much memory,
// CPU and was OOM-killed gives the next job its own counters and limits.
func TestSpawnerSlotReuse(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		hog := te.spec("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 200M /dev/zero | tail")
		hog.Memory, hog.CPUSet = 64<<20, []int{0}
		if o := te.run(t, hog); o.State != StateOutOfMemory || o.Usage.CPUTime < 10*time.Millisecond {
			t.Fatalf("hog: %+v, want OUT_OF_MEMORY after some CPU", o)
		}
		if err := te.Release(hog.JobID); err != nil {
			t.Fatal(err)
		}
		small := te.spec("cat /sys/fs/cgroup/memory$(sed -n 's/.*:memory://p' /proc/self/cgroup)/memory.limit_in_bytes")
		small.Memory = 256 << 20
		o := te.run(t, small)
		if o.State != StateCompleted {
			t.Fatalf("job in a reused slot: %+v, want COMPLETED (no OOM of the last job)", o)
		}
		if o.Usage.CPUTime >= 10*time.Millisecond*5 || o.Usage.PeakMemory >= 32<<20 {
			t.Errorf("job in a reused slot: CPU %v, peak %d: counters of the last job leaked", o.Usage.CPUTime, o.Usage.PeakMemory)
		}
		if got := strings.TrimSpace(readFile(t, small.Stdout)); got != fmt.Sprint(256<<20) {
			t.Errorf("memory limit in the reused slot %q, want %d", got, 256<<20)
		}
		// The journal holds the outcome until the release.
		b := readFile(t, filepath.Join(te.sp.dir, spawnerJournal))
		var found bool
		for _, line := range strings.Split(b, "\n") {
			var e journalEntry
			if json.Unmarshal([]byte(line), &e) == nil && e.Op == "E" && e.ID == small.JobID {
				found = true
			}
		}
		if !found {
			t.Errorf("journal has no outcome of job %d:\n%s", small.JobID, b)
		}
	})
}
