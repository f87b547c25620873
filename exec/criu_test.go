package exec

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/checkpoint"
)

// requireCRIU finds a working CRIU >= 4.1 or skips, saying why.
func requireCRIU(t *testing.T) *checkpoint.CRIU {
	t.Helper()
	requireRoot(t)
	c, err := checkpoint.FindCRIU(context.Background())
	if err != nil {
		t.Skipf("CRIU round trip not tested here: %v", err)
	}
	return c
}

// newCRIUExecutor is newTestExecutor with CRIU and a cgroup parent of its
// own: another node's agent. Nodes lay out their data directories alike,
// so stateDir is the same path on every node (a script job keeps its
// job.sh open, and CRIU reopens it by path).
func newCRIUExecutor(t *testing.T, c *checkpoint.CRIU, stateDir string) *testExec {
	t.Helper()
	parent := fmt.Sprintf("hpc-test-%d-%d", os.Getpid(), parentSeq.Add(1))
	e, err := New(Config{StateDir: stateDir, CgroupParent: parent, KillGrace: 300 * time.Millisecond, AllowRoot: true, CRIU: c},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { cleanupExecutor(t, e, parent) })
	return &testExec{Executor: e, parent: parent, dir: worldDir(t, nobody)}
}

// counted parses a job's output of one number per line.
func counted(t *testing.T, path string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(readFile(t, path)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("output line %q", f)
		}
		out = append(out, n)
	}
	return out
}

// A job that keeps its state only in memory (a shell variable) is dumped
// with CRIU on one node, ends, and is restored by another node's executor:
// it continues counting from where it was, as the same user, in its new
// cgroup, appending to the same output file.
func TestCRIURoundTripToAnotherNode(t *testing.T) {
	c := requireCRIU(t)
	stateDir := filepath.Join(worldDir(t, 0), "state")
	a, b := newCRIUExecutor(t, c, stateDir), newCRIUExecutor(t, c, stateDir)
	s := a.spec(`i=0; while true; do i=$((i + 1)); echo $i; sleep 0.05; done`)
	user := uint32(nobody)
	if !hasCapSysResource(t) {
		// CRIU reads the rlimits of the tree it dumps: for another user's
		// process that takes CAP_SYS_RESOURCE, which this machine's root
		// lacks (a container). The round trip is then a root job's.
		t.Log("no CAP_SYS_RESOURCE here: dumping a job of another user needs it; the job runs as root")
		user = 0
		s.UID, s.GID, s.Groups, s.User = 0, 0, nil, "root"
	}
	images := filepath.Join(worldDir(t, 0), "job.criu")
	h, err := a.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ten numbers", func() bool { b, _ := os.ReadFile(s.Stdout); return strings.Count(string(b), "\n") >= 10 })

	// A periodic dump leaves the job running.
	if err := h.Checkpoint(context.Background(), images, true); err != nil {
		t.Fatalf("periodic dump: %v", err)
	}
	if !h.running() || !checkpoint.HasImage(images) {
		t.Fatalf("after a periodic dump: running %v, image %v", h.running(), checkpoint.HasImage(images))
	}
	// The stop dump ends it.
	if err := h.Checkpoint(context.Background(), images, false); err != nil {
		t.Fatalf("stop dump: %v", err)
	}
	o := wait(t, h)
	if o.State != StateCancelled || !strings.Contains(o.Reason, "CRIU") {
		t.Fatalf("outcome after the stop dump %+v", o)
	}
	before := counted(t, s.Stdout)
	if err := a.Release(s.JobID); err != nil {
		t.Fatal(err)
	}

	s.RestoreFrom, s.RestartCount = images, 1
	h2, err := b.Launch(context.Background(), s)
	if err != nil {
		t.Fatalf("restore on the other node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(images, "restore.log"))
			t.Logf("restore.log:\n%s", b)
		}
	})
	waitFor(t, "the restored job to count on", func() bool {
		b, _ := os.ReadFile(s.Stdout)
		return strings.Count(string(b), "\n") >= len(before)+10
	})
	if pid := h2.PID(); owner(t, fmt.Sprintf("/proc/%d", pid)) != user {
		t.Errorf("restored job does not run as uid %d", user)
	}
	if err := h2.Cancel("test over"); err != nil {
		t.Fatal(err)
	}
	wait(t, h2)
	after := counted(t, s.Stdout)
	for i, n := range after {
		if n != i+1 {
			t.Fatalf("output %v...: line %d is %d, want %d: the count did not continue from memory (dumped at %d)", after[:min(len(after), 5)], i+1, n, i+1, len(before))
		}
	}
}

// hasCapSysResource reports whether this process holds CAP_SYS_RESOURCE.
func hasCapSysResource(t *testing.T) bool {
	for _, l := range strings.Split(readFile(t, "/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}

// A descriptor the daemon inherited without close-on-exec (a lock file
// of the shell that started it) never reaches the job: it would leak, and
// a CRIU restore of a job holding a lock on it would hang.
func TestJobGetsNoInheritedDescriptors(t *testing.T) {
	te := newTestExecutor(t, "")
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const leaked = 77
	if err := unix.Dup3(fd, leaked, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	s := te.spec(fmt.Sprintf(`if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo clean; fi`, leaked))
	if o := te.run(t, s); o.State != StateCompleted {
		t.Fatalf("outcome %+v", o)
	}
	if got := strings.TrimSpace(readFile(t, s.Stdout)); got != "clean" {
		t.Fatalf("job saw fd %d of the daemon: %s", leaked, got)
	}
}
