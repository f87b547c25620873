package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the shim and init stage, and as a
// throw-away agent for the crash test (see runTestAgent).
func TestMain(m *testing.M) {
	if ShimMain() {
		return
	}
	if os.Getenv(testAgentEnv) != "" {
		os.Exit(runTestAgent())
	}
	os.Exit(m.Run())
}

const nobody = 65534

var (
	jobSeq    atomic.Uint64
	parentSeq atomic.Uint64
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: jobs run as another user inside cgroups")
	}
}

// worldDir is a temporary directory every user can enter (t.TempDir's
// parents are 0700), made writable by owner uid.
func worldDir(t *testing.T, owner int) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hpc-exec-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, owner, owner); err != nil {
		t.Fatal(err)
	}
	return d
}

type testExec struct {
	*Executor
	parent string
	dir    string // world-enterable scratch dir owned by nobody
}

// newTestExecutor makes an executor with its own state dir and cgroup
// parent, and removes every job, cgroup and parent when the test ends.
func newTestExecutor(t *testing.T, iso Isolation) *testExec {
	t.Helper()
	requireRoot(t)
	parent := fmt.Sprintf("hpc-test-%d-%d", os.Getpid(), parentSeq.Add(1))
	root := worldDir(t, 0)
	e, err := New(Config{StateDir: filepath.Join(root, "state"), CgroupParent: parent, Isolation: iso, KillGrace: 300 * time.Millisecond, AllowRoot: true,
		Spawner: viaSpawner(t)},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { cleanupExecutor(t, e, parent) })
	return &testExec{Executor: e, parent: parent, dir: worldDir(t, nobody)}
}

func cleanupExecutor(t *testing.T, e *Executor, parent string) {
	ids, _ := e.Known()
	for _, id := range ids {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.jobDir(id), shimLogFile)); err == nil && len(b) > 0 {
				t.Logf("shim log of job %d:\n%s", id, b)
			}
		}
		if err := e.Release(id); err != nil {
			t.Errorf("cleanup: release job %d: %v", id, err)
		}
	}
	e.Close() // a spawner removes its free slots
	if e.sp != nil && t.Failed() {
		if b, err := os.ReadFile(filepath.Join(e.sp.dir, spawnerLog)); err == nil && len(b) > 0 {
			t.Logf("spawner log:\n%s", b)
		}
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
	for _, d := range dirs {
		// A shim that moved itself up into the parent group may still be
		// exiting after writing its result: give it a moment.
		err := os.Remove(d)
		for i := 0; i < 100 && errors.Is(err, syscall.EBUSY); i++ {
			time.Sleep(20 * time.Millisecond)
			err = os.Remove(d)
		}
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// spec returns a job run as nobody with output files in the scratch dir.
func (te *testExec) spec(script string) Spec {
	id := jobSeq.Add(1) + uint64(os.Getpid())*1000
	return Spec{
		JobID: id, Name: "test", User: "nobody", Script: script,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, Dir: te.dir,
		UID: nobody, GID: nobody, Groups: []uint32{nobody},
		Stdout: filepath.Join(te.dir, fmt.Sprintf("hpc-%d.out", id)), Stderr: filepath.Join(te.dir, fmt.Sprintf("hpc-%d.err", id)),
		ArrayIndex: -1, NodeList: []string{"localhost"},
	}
}

func (te *testExec) run(t *testing.T, s Spec) Outcome {
	t.Helper()
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	return wait(t, h)
}

func wait(t *testing.T, h *Handle) Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return o
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jobProcesses finds live processes of a job anywhere on the machine by the
// HPC_JOB_ID in their environment: escaping the process group or session
// does not hide a process from this.
func jobProcesses(jobID uint64) []int {
	want := []byte("HPC_JOB_ID=" + strconv.FormatUint(jobID, 10) + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains(string(b), string(want)) {
			continue
		}
		if st, _, _, err := procStat(pid); err == nil && st != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// waitFor polls cond until it holds (or fails the test after a generous
// limit that only a broken implementation reaches).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func owner(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}
