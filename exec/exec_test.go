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
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	tests := []struct {
		name   string
		script string
		argv   []string
		state  string
		code   int
		signal string
		reason string
	}{
		{"exit 0", "echo out; echo err >&2", nil, StateCompleted, 0, "", ""},
		{"exit 3", "", []string{"sh", "-c", "exit 3"}, StateFailed, 3, "", "exit code 3"},
		{"killed by SIGKILL", "kill -9 $$", nil, StateFailed, 137, "SIGKILL", "SIGKILL"},
		{"command not found", "", []string{"no-such-command-hpc"}, StateFailed, 127, "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := te.spec(tt.script)
			if tt.argv != nil {
				s.Script, s.Argv = "", tt.argv
			}
			o := te.run(t, s)
			if o.State != tt.state || o.ExitCode != tt.code || o.Signal != tt.signal || !strings.Contains(o.Reason, tt.reason) {
				t.Errorf("outcome %+v, want %s code %d signal %q reason ~%q", o, tt.state, tt.code, tt.signal, tt.reason)
			}
			if o.End.Before(o.Start) || o.Usage.Elapsed < 0 {
				t.Errorf("times: %+v", o)
			}
		})
	}
}

// TestAsUser: the job runs as nobody, its output files are created by and
// owned by nobody, and the environment carries the HPC_* and CUDA variables.
func TestAsUser(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("id -u; id -g; echo to-stderr >&2; env")
	s.ArrayIndex, s.RestartCount, s.Env = 5, 1, append(s.Env, "MINE=yes")
	s.GPUs = []GPUDevice{{Index: 1, Minor: 1}}
	if o := te.run(t, s); o.State != StateCompleted {
		t.Fatalf("outcome %+v", o)
	}
	out := readFile(t, s.Stdout)
	lines := strings.Split(out, "\n")
	if lines[0] != "65534" || lines[1] != "65534" {
		t.Errorf("id -u/-g printed %q %q, want 65534", lines[0], lines[1])
	}
	for _, want := range []string{"HPC_JOB_ID=" + strconv.FormatUint(s.JobID, 10), "HPC_JOB_NAME=test", "HPC_NODELIST=localhost",
		"HPC_ARRAY_INDEX=5", "HPC_RESTART_COUNT=1", "CUDA_VISIBLE_DEVICES=1", "NVIDIA_VISIBLE_DEVICES=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "MINE=yes"} {
		if !strings.Contains(out, "\n"+want+"\n") {
			t.Errorf("job environment lacks %s", want)
		}
	}
	if strings.Contains(out, shimEnv) {
		t.Errorf("job environment leaks %s", shimEnv)
	}
	if got := readFile(t, s.Stderr); got != "to-stderr\n" {
		t.Errorf("stderr = %q", got)
	}
	for _, p := range []string{s.Stdout, s.Stderr} {
		if uid := owner(t, p); uid != nobody {
			t.Errorf("%s owned by %d, want %d", p, uid, nobody)
		}
	}
}

// TestOutputNotWritableAsUser: a path that root could write but the user
// cannot (a root-owned directory) is never created; the job fails instead.
func TestOutputNotWritableAsUser(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	rootDir := worldDir(t, 0)
	s := te.spec("echo hi")
	s.Stdout = filepath.Join(rootDir, "out")
	o := te.run(t, s)
	if o.State != StateFailed || !strings.Contains(o.Reason, "permission denied") {
		t.Errorf("outcome %+v, want FAILED with permission denied", o)
	}
	if _, err := os.Stat(s.Stdout); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists: %v", s.Stdout, err)
	}
	// A symlink planted by the user is not followed, not even as the user.
	link := filepath.Join(te.dir, "planted")
	if err := os.Symlink(filepath.Join(rootDir, "victim"), link); err != nil {
		t.Fatal(err)
	}
	s = te.spec("echo hi")
	s.Stdout = link
	if o := te.run(t, s); o.State != StateFailed {
		t.Errorf("outcome %+v through a symlink, want FAILED", o)
	}
	if _, err := os.Stat(filepath.Join(rootDir, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink target was created: %v", err)
	}
}

func TestOutOfMemory(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("head -c 200M /dev/zero | tail")
	s.Memory = 64 << 20
	o := te.run(t, s)
	t.Logf("outcome: %+v", o)
	if o.State != StateOutOfMemory || !strings.Contains(o.Reason, "64MiB") {
		t.Errorf("outcome %+v, want OUT_OF_MEMORY at 64MiB", o)
	}
	if o.Usage.PeakMemory <= 0 || o.Usage.PeakMemory > 70<<20 {
		t.Errorf("peak memory %d, want within the 64MiB limit", o.Usage.PeakMemory)
	}
}

// TestWalltime: SIGTERM at the walltime; a job that ignores it is killed
// after the grace time, background children included.
func TestWalltime(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("trap '' TERM; sleep 30 & sleep 30")
	s.Walltime = 1e9
	o := te.run(t, s)
	if o.State != StateTimeout || o.Signal != "SIGKILL" {
		t.Errorf("outcome %+v, want TIMEOUT by SIGKILL", o)
	}
	if p := jobProcesses(s.JobID); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
}

// TestWarnSignal: the checkpoint warning arrives before the walltime, and a
// job that exits on it completes.
func TestWarnSignal(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("trap 'echo warned; exit 0' USR1; sleep 30 & wait")
	s.Walltime, s.WarnSignal, s.WarnBefore = 20e9, syscall.SIGUSR1, 19.5e9
	o := te.run(t, s)
	if o.State != StateCompleted || readFile(t, s.Stdout) != "warned\n" {
		t.Errorf("outcome %+v, output %q; want COMPLETED after the warning", o, readFile(t, s.Stdout))
	}
}

// cancelTree launches a job whose children escape its process group and
// session, cancels it and checks that nothing of it is left.
func cancelTree(t *testing.T, te *testExec) {
	s := te.spec("sleep 300 & (setsid sleep 301 &); setsid sleep 302 & echo started; wait")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job processes", func() bool { return len(jobProcesses(s.JobID)) >= 4 })
	if err := h.Signal(0); err != nil {
		t.Errorf("Signal(0) to a running job: %v", err)
	}
	if err := h.Cancel("test"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	o := wait(t, h)
	if o.State != StateCancelled || o.Reason != "cancelled: test" {
		t.Errorf("outcome %+v, want CANCELLED", o)
	}
	if p := jobProcesses(s.JobID); len(p) > 0 {
		t.Errorf("processes left after cancel: %v", p)
	}
	if m, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/*/%s/job-%d", te.parent, s.JobID)); len(m) > 0 {
		t.Errorf("cgroups left after the job ended: %v", m)
	}
	if err := h.Signal(syscall.SIGTERM); !errors.Is(err, ErrFinished) {
		t.Errorf("Signal after the end = %v, want ErrFinished", err)
	}
	if err := te.Release(s.JobID); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if m, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/*/%s/job-%d", te.parent, s.JobID)); len(m) > 0 {
		t.Errorf("cgroups left after Release: %v", m)
	}
	if _, err := os.Stat(te.jobDir(s.JobID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left after Release: %v", err)
	}
}

func TestCancelTree(t *testing.T) {
	t.Parallel()
	cancelTree(t, newTestExecutor(t, ""))
}

func TestIsolationNone(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, IsolationNone)
	if te.Isolation() != IsolationNone {
		t.Fatalf("isolation %s", te.Isolation())
	}
	s := te.spec("echo fine; id -u")
	if o := te.run(t, s); o.State != StateCompleted || readFile(t, s.Stdout) != "fine\n65534\n" {
		t.Errorf("outcome %+v output %q", o, readFile(t, s.Stdout))
	}
	// Memory is an RLIMIT_DATA per process: allocation fails instead.
	hog := te.spec("head -c 200M /dev/zero | tail")
	hog.Memory = 64 << 20
	if o := te.run(t, hog); o.State != StateFailed || !strings.Contains(o.Reason, "cannot be detected") {
		t.Errorf("memory hog without cgroups: %+v, want FAILED saying OOM cannot be detected", o)
	}
	cancelTree(t, te)
}

func TestRootRefused(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	strict, err := New(Config{StateDir: t.TempDir(), CgroupParent: te.parent}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := te.spec("id -u")
	s.UID, s.GID = 0, 0
	if _, err := strict.Launch(context.Background(), s); !errors.Is(err, ErrRootRefused) {
		t.Fatalf("Launch as root = %v, want ErrRootRefused", err)
	}
	if ids, _ := strict.Known(); len(ids) != 0 {
		t.Errorf("state left for refused job: %v", ids)
	}
	// With AllowRoot (dev mode) the same job runs as root.
	if o := te.run(t, s); o.State != StateCompleted || readFile(t, s.Stdout) != "0\n" {
		t.Errorf("root job with AllowRoot: %+v", o)
	}
}

func TestLaunchTwiceRefused(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("true")
	te.run(t, s)
	if _, err := te.Launch(context.Background(), s); !errors.Is(err, ErrJobExists) {
		t.Errorf("second Launch = %v, want ErrJobExists", err)
	}
}

// TestCgroupV1Limits checks the values written into the job's v1 cgroup and
// that the device rules bite: an open of a denied GPU minor fails with EPERM
// (the devices controller), of an allowed one with ENXIO (no driver here).
func TestCgroupV1Limits(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	if te.Isolation() != IsolationV1 {
		t.Skipf("host isolation is %s, not cgroup-v1", te.Isolation())
	}
	devDir := worldDir(t, 0)
	for _, m := range []int{0, 1} {
		if err := unix.Mknod(filepath.Join(devDir, fmt.Sprintf("nv%d", m)), unix.S_IFCHR|0o666, int(unix.Mkdev(nvidiaMajor, uint32(m)))); err != nil {
			t.Skipf("cannot create device nodes: %v", err)
		}
		os.Chmod(filepath.Join(devDir, fmt.Sprintf("nv%d", m)), 0o666)
	}
	s := te.spec(fmt.Sprintf("cat %s/nv0; cat %s/nv1; : > /dev/null && echo devnull-ok; sleep 300", devDir, devDir))
	s.CPUSet, s.Memory, s.Pids = []int{0}, 128<<20, 500
	s.GPUs, s.AllGPUMinors = []GPUDevice{{Index: 0, Minor: 1}}, []int{0, 1}
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel("test over")
	cg := func(ctrl, file string) string {
		return strings.TrimSpace(readFile(t, fmt.Sprintf("/sys/fs/cgroup/%s%s/%s", ctrl, procCgroup(t, h.PID(), ctrl), file)))
	}
	for _, c := range []struct{ ctrl, file, want string }{
		{"cpu", "cpu.cfs_quota_us", "100000"}, {"cpu", "cpu.cfs_period_us", "100000"}, {"cpuset", "cpuset.cpus", "0"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(128 << 20)}, {"memory", "memory.memsw.limit_in_bytes", strconv.Itoa(128 << 20)},
		{"pids", "pids.max", "500"},
	} {
		if got := cg(c.ctrl, c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}
	procs := cg("memory", "cgroup.procs")
	if !strings.Contains("\n"+procs+"\n", "\n"+strconv.Itoa(h.PID())+"\n") {
		t.Errorf("job pid %d not in its cgroup (procs %q)", h.PID(), procs)
	}
	waitFor(t, "device probes", func() bool { return strings.Contains(readFile(t, s.Stdout), "devnull-ok") })
	errs := readFile(t, s.Stderr)
	if !strings.Contains(errs, "nv0: Operation not permitted") {
		t.Errorf("denied GPU minor 0 was not refused by the cgroup: %q", errs)
	}
	if strings.Contains(errs, "nv1: Operation not permitted") || !strings.Contains(errs, "nv1: No such device") {
		t.Errorf("allocated GPU minor 1 was refused: %q", errs)
	}
}

// TestGPUIsolationReal runs only where an NVIDIA GPU is present.
func TestGPUIsolationReal(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/dev/nvidia0", &st); err != nil {
		t.Skip("no /dev/nvidia0 on this machine")
	}
	t.Parallel()
	te := newTestExecutor(t, "")
	minor := int(unix.Minor(st.Rdev))
	var all []int
	devs, _ := filepath.Glob("/dev/nvidia[0-9]*")
	for _, d := range devs {
		var ds unix.Stat_t
		if unix.Stat(d, &ds) == nil && unix.Major(ds.Rdev) == nvidiaMajor {
			all = append(all, int(unix.Minor(ds.Rdev)))
		}
	}
	// head, not a shell redirection: a failed redirection of a special
	// builtin would end the whole script.
	probe := `if head -c 0 /dev/nvidia0; then echo open-ok; else echo open-denied; fi; echo "cvd=$CUDA_VISIBLE_DEVICES"`
	none := te.spec(probe)
	none.AllGPUMinors = all
	if o := te.run(t, none); o.State != StateCompleted {
		t.Fatalf("outcome %+v, stderr %q", o, readFile(t, none.Stderr))
	}
	if out, errs := readFile(t, none.Stdout), readFile(t, none.Stderr); !strings.Contains(out, "open-denied") || !strings.Contains(errs, "Operation not permitted") || !strings.Contains(out, "cvd=\n") {
		t.Errorf("job without GPUs: stdout %q stderr %q, want EPERM and empty CUDA_VISIBLE_DEVICES", out, errs)
	}
	one := te.spec(probe)
	one.AllGPUMinors, one.GPUs = all, []GPUDevice{{Index: 0, Minor: minor}}
	if o := te.run(t, one); o.State != StateCompleted {
		t.Fatalf("outcome %+v", o)
	}
	if out := readFile(t, one.Stdout); !strings.Contains(out, "open-ok") || !strings.Contains(out, "cvd=0\n") {
		t.Errorf("job with GPU 0: %q (stderr %q), want open-ok and CUDA_VISIBLE_DEVICES=0", out, readFile(t, one.Stderr))
	}
}

// TestCgroupV2OnHybrid forces cgroup-v2 on this hybrid host: the unified
// hierarchy has no resource controllers here, but it exercises what v2
// needs beyond them: clone3 into the job's group, cgroup.kill of the whole
// tree, and the eBPF device filter.
func TestCgroupV2OnHybrid(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	if !hasV2Controllers(v2HybridMount) || v2MountFor() != v2HybridMount {
		t.Skip("not a hybrid host with cgroup2 at " + v2HybridMount)
	}
	te := newTestExecutor(t, IsolationV2)
	devDir := worldDir(t, 0)
	for _, m := range []int{0, 1} {
		p := filepath.Join(devDir, fmt.Sprintf("nv%d", m))
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(nvidiaMajor, uint32(m)))); err != nil {
			t.Skipf("cannot create device nodes: %v", err)
		}
		os.Chmod(p, 0o666)
	}
	s := te.spec(fmt.Sprintf("cat /proc/self/cgroup; cat %s/nv0; cat %s/nv1; : > /dev/null && echo devnull-ok", devDir, devDir))
	s.GPUs, s.AllGPUMinors, s.Memory = []GPUDevice{{Index: 0, Minor: 1}}, []int{0, 1}, 64<<20
	if o := te.run(t, s); o.State != StateCompleted {
		t.Fatalf("outcome %+v", o)
	}
	out, errs := readFile(t, s.Stdout), readFile(t, s.Stderr)
	if want := fmt.Sprintf("0::/%s/job-%d\n", te.parent, s.JobID); !strings.Contains(out, want) {
		t.Errorf("job not started inside its cgroup: /proc/self/cgroup %q lacks %q", out, want)
	}
	if !strings.Contains(out, "devnull-ok") || !strings.Contains(errs, "nv0: Operation not permitted") || !strings.Contains(errs, "nv1: No such device") {
		t.Errorf("device filter: stdout %q stderr %q", out, errs)
	}
	cancelTree(t, te)
}

// TestShimKilled: when the supervisor dies, the agent kills what is left of
// the job and records a FAILED outcome saying so, marked as a host failure
// (the server requeues such a job when it allows it).
func TestShimKilled(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("sleep 300 & sleep 300")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job processes", func() bool { return len(jobProcesses(s.JobID)) >= 2 })
	if err := unix.Kill(h.shim.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	checkSupervisorDeath(t, te, h, s.JobID, "shim")
}

// checkSupervisorDeath checks a job whose supervisor (shim or spawner) was
// killed: it ends FAILED naming the supervisor, as the host's failure,
// with none of its processes left, and the outcome is durable (a later
// adoption reads the same).
func checkSupervisorDeath(t *testing.T, te *testExec, h *Handle, jobID uint64, supervisor string) {
	t.Helper()
	o := wait(t, h)
	if o.State != StateFailed || !strings.Contains(o.Reason, supervisor) || !o.HostFailure {
		t.Errorf("outcome %+v, want FAILED naming the %s, marked as the host's failure", o, supervisor)
	}
	if p := jobProcesses(jobID); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
	h2, err := te.Adopt(jobID)
	if err != nil {
		t.Fatal(err)
	}
	if o2 := wait(t, h2); o2.State != o.State || o2.Reason != o.Reason {
		t.Errorf("adopted outcome %+v, want %+v", o2, o)
	}
}

// TestCgroupV2Limits checks the values written on a unified (cgroup2) host.
func TestCgroupV2Limits(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	if te.Isolation() != IsolationV2 || te.v2mount != v2DefaultMount {
		t.Skipf("host isolation is %s, not cgroup-v2 on a unified host", te.Isolation())
	}
	s := te.spec("sleep 300")
	s.CPUSet, s.Memory, s.Pids = []int{0}, 128<<20, 500
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel("test over")
	dir := fmt.Sprintf("%s/%s/job-%d/", v2DefaultMount, te.parent, s.JobID)
	for file, want := range map[string]string{"cpu.max": "100000 100000", "cpuset.cpus": "0", "memory.max": strconv.Itoa(128 << 20),
		"memory.swap.max": "0", "pids.max": "500"} {
		if got := strings.TrimSpace(readFile(t, dir+file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if procs := readFile(t, dir+"cgroup.procs"); !strings.Contains("\n"+procs, "\n"+strconv.Itoa(h.PID())+"\n") {
		t.Errorf("job pid %d not in its cgroup (procs %q)", h.PID(), procs)
	}
}

// A FIFO named as output must not hang the job's start (and with it the
// agent's launch): only regular files are taken.
func TestOutputFIFORefused(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	s := te.spec("echo hi")
	s.Stdout = filepath.Join(te.dir, "fifo")
	if err := unix.Mkfifo(s.Stdout, 0o666); err != nil {
		t.Fatal(err)
	}
	o := te.run(t, s)
	if o.State != StateFailed || !strings.Contains(o.Reason, s.Stdout) {
		t.Errorf("outcome %+v, want FAILED naming the FIFO", o)
	}
}

// A daemon restarted with another isolation mode (or cgroup parent) still
// adopts, cancels and cleans up the jobs launched under the old one: the
// launch record, not the new configuration, says where they live.
func TestAdoptAcrossIsolationChange(t *testing.T) {
	te := newTestExecutor(t, "")
	if te.Isolation() != IsolationV1 {
		t.Skipf("host isolation is %s, not cgroup-v1", te.Isolation())
	}
	s := te.spec("sleep 300")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	pid := h.PID()
	other, err := New(Config{StateDir: te.cfg.StateDir, CgroupParent: te.parent + "-other", Isolation: IsolationNone, AllowRoot: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := other.Adopt(s.JobID)
	if err != nil {
		t.Fatalf("adopt under another isolation: %v", err)
	}
	if err := adopted.Cancel("test"); err != nil {
		t.Fatal(err)
	}
	if o := wait(t, adopted); o.State != StateCancelled {
		t.Errorf("outcome %s, want CANCELLED", o.State)
	}
	if err := other.Release(s.JobID); err != nil {
		t.Fatal(err)
	}
	if unix.Kill(pid, 0) == nil {
		t.Errorf("job process %d still alive after cancel and release", pid)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", te.parent, fmt.Sprintf("job-%d", s.JobID))); !os.IsNotExist(err) {
		t.Errorf("job cgroup left behind: %v", err)
	}
}
