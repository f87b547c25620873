package exec

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fullDiskExecutor is an executor whose state directory is a small tmpfs
// the test can fill to the last byte (fill) and empty again (free).
func fullDiskExecutor(t *testing.T) (te *testExec, fill, free func()) {
	t.Helper()
	requireRoot(t)
	base := newTestExecutor(t, "") // for its cgroup parent and scratch dir
	state := filepath.Join(worldDir(t, 0), "state")
	if err := os.Mkdir(state, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=2m,mode=0711"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(state, syscall.MNT_DETACH) })
	e, err := New(Config{StateDir: state, CgroupParent: base.parent, KillGrace: 300 * time.Millisecond, AllowRoot: true, Spawner: viaSpawner(t)},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupExecutor(t, e, base.parent) })
	filler := filepath.Join(state, "filler")
	fill = func() {
		f, err := os.OpenFile(filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				return
			}
		}
	}
	free = func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
	return &testExec{Executor: e, parent: base.parent, dir: base.dir}, fill, free
}

// Found as: jobs that exited 0 while the disk was full could not write
// their result and ended NODE_FAIL, later FAILED "supervisor died". The
// shim now keeps the job's outcome, alive, until it is written.
func TestShimKeepsResultUntilWritten(t *testing.T) {
	te, fill, free := fullDiskExecutor(t)
	goFile := filepath.Join(te.dir, "go")
	s := te.spec("while [ ! -e " + goFile + " ]; do sleep 0.05; done; exit 0")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to run", func() bool { return len(jobProcesses(s.JobID)) > 0 })
	fill()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to exit", func() bool { return len(jobProcesses(s.JobID)) == 0 })
	// The job is over but its result can't be written: the shim stays,
	// so nobody records a made-up end.
	time.Sleep(500 * time.Millisecond)
	if !h.running() {
		o, _, _ := readResult(h.dir)
		t.Fatalf("the shim gave up on a result it could not write (result on disk: %+v)", o)
	}
	free()
	o := wait(t, h)
	if o.State != StateCompleted || o.ExitCode != 0 || o.HostFailure {
		t.Fatalf("outcome %+v, want the job's own COMPLETED exit 0", o)
	}
}

// A launch on a node whose state disk is full fails with the cause, and
// leaves nothing behind (the server then treats it as a host failure).
func TestLaunchOnFullDiskFails(t *testing.T) {
	te, fill, _ := fullDiskExecutor(t)
	fill()
	_, err := te.Launch(context.Background(), te.spec("true"))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Launch on a full disk: %v, want the cause", err)
	}
	if ids, _ := te.Known(); len(ids) != 0 {
		t.Fatalf("a failed launch left state: %v", ids)
	}
}

// TestSpawnerKeepsOutcomesUntilWritten: the spawner's journal is full when
// 30 jobs exit 0 and another is cancelled: outcomes that do not fit are
// not reported before they are written, none turns into a host failure,
// and all arrive, the jobs' own, once the disk has room again.
func TestSpawnerKeepsOutcomesUntilWritten(t *testing.T) {
	t.Run("spawner/check", func(t *testing.T) {
		te, fill, free := fullDiskExecutor(t)
		if te.sp == nil {
			t.Skip("no spawner on this host")
		}
		goFile := filepath.Join(te.dir, "go")
		var hs []*Handle
		var ids []uint64
		for i := 0; i < 30; i++ {
			s := te.spec("while [ ! -e " + goFile + " ]; do sleep 0.05; done; exit 0")
			h, err := te.Launch(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			hs, ids = append(hs, h), append(ids, s.JobID)
		}
		c := te.spec("sleep 300")
		hc, err := te.Launch(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the jobs to run", func() bool { return len(jobProcesses(c.JobID)) > 0 })
		fill()
		if err := os.WriteFile(goFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := hc.Cancel("full disk test"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the jobs to end", func() bool {
			for _, id := range append(ids, c.JobID) {
				if len(jobProcesses(id)) > 0 {
					return false
				}
			}
			return true
		})
		time.Sleep(300 * time.Millisecond)
		held := 0
		for _, h := range hs {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			if _, err := h.Wait(ctx); err != nil {
				held++
			}
			cancel()
		}
		if held == 0 {
			t.Errorf("30 outcomes reported while the journal had no room for them")
		}
		free()
		for i, h := range append(hs, hc) {
			want := StateCompleted
			if h == hc {
				want = StateCancelled
			}
			if o := wait(t, h); o.State != want || o.HostFailure {
				t.Errorf("job %d: outcome %+v, want the job's own %s", i, o, want)
			}
		}
	})
}
