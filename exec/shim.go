package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// shimEnv selects the role of a re-executed agent binary: "1" for the shim,
// "init" for the init stage, "spawner" for the node's spawner.
const shimEnv = "HPC_SHIM"

// ShimMain must be called first thing in main() of any binary that may be
// re-exec'd as the shim (hpcd, and this package's TestMain). It returns
// false when this process is not a shim; otherwise it runs the shim (or the
// init stage) and exits.
func ShimMain() bool {
	switch os.Getenv(shimEnv) {
	case "1":
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "hpc shim: missing state directory argument")
			os.Exit(2)
		}
		os.Exit(runShim(os.Args[1]))
	case "init":
		os.Exit(runInit())
	case "spawner":
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "hpc spawner: missing directory argument")
			os.Exit(2)
		}
		os.Exit(runSpawner(os.Args[1]))
	}
	return false
}

// shim is the per-job supervisor process.
type shim struct {
	dir  string
	rec  record
	log  *slog.Logger
	grp  jobGroup
	self int
	// fenced: the agent's lease ran out and the shim killed the job.
	fenced time.Duration
	// oomProtected: the shim's OOM score is -1000, which the job must not
	// inherit (see startJob).
	oomProtected bool
}

type childExit struct {
	pid int
	ws  unix.WaitStatus
	ru  unix.Rusage
}

// runShim runs in a new session with stdin = the release pipe, stdout and
// stderr = shim.log, fd 3 = the status pipe to the launching agent.
func runShim(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("shim", os.Getpid())
	s := &shim{dir: dir, log: log, self: os.Getpid()}
	if err := readJSON(filepath.Join(dir, recordFile), &s.rec); err != nil {
		log.Error("cannot start", "err", err)
		return 2
	}
	// The OOM killer must pick the job, never its supervisor.
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0); err == nil {
		s.oomProtected = true
	} else {
		// Lowering it needs CAP_SYS_RESOURCE. The shim is outside the job's
		// memory cgroup once the job runs, so only a global OOM could pick it.
		log.Info("shim keeps its OOM score", "err", err)
	}
	// Orphans of the job (double fork, setsid) are re-parented to us, so the
	// fallback mode can still find and kill them, and we reap them all.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("cannot become child subreaper", "err", err)
	}
	// A hangup or interrupt must not take the supervisor down. Catching
	// (rather than ignoring) keeps the job's own dispositions default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT)

	status := os.NewFile(3, "status")
	var b [1]byte
	if n, _ := os.Stdin.Read(b[:]); n != 1 {
		// The agent died before it released us: never start the job, and
		// say so, so that the job can be queued again rather than failed.
		log.Warn("not released by the agent; exiting without starting the job")
		now := time.Now()
		o := Outcome{State: StateFailed, ExitCode: exitSetupFailed, Start: now, End: now, NeverStarted: true,
			Reason: "the agent stopped before the job started"}
		if err := writeJSON(filepath.Join(dir, resultFile), o); err != nil {
			log.Error("cannot write result", "err", err)
		}
		// The agent made the job's cgroup before starting us: remove it.
		if drv, err := newDriver(s.rec.Isolation, s.rec.CgroupParent, s.rec.V2Mount); err == nil {
			if s.grp, err = drv.load(s.rec.Spec.JobID); err == nil {
				s.cleanup()
			}
		}
		return 3
	}
	os.Stdin.Close()
	return s.run(status)
}

func (s *shim) run(status *os.File) int {
	spec := s.rec.Spec
	drv, err := newDriver(s.rec.Isolation, s.rec.CgroupParent, s.rec.V2Mount)
	if err == nil {
		s.grp, err = drv.load(spec.JobID)
	}
	if err != nil {
		s.log.Error("cannot load the job's cgroup", "err", err)
		fmt.Fprintf(status, "err %s\n", err)
		return 4
	}
	start := time.Now()
	pid, startErr, err := s.startOrRestore()
	if err != nil {
		// Nothing of the job ran: the node could not start it (no
		// descriptors, no processes left, cgroup trouble).
		o := Outcome{State: StateFailed, ExitCode: exitSetupFailed, Reason: "cannot start the job: " + err.Error(), Start: start, End: time.Now(),
			HostFailure: true}
		fmt.Fprintf(status, "ok 0\n")
		status.Close()
		s.keepResult(o)
		s.cleanup()
		return 0
	}
	// From here on the shim lives outside the job's cgroup (v1: it was
	// inside only so the job would be forked there).
	if err := s.grp.leave(); err != nil {
		s.log.Warn("shim stays in the job cgroup", "err", err)
	}
	if id, err := identify(pid); err == nil {
		if err := writeVolatileJSON(filepath.Join(s.dir, jobPIDFile), id); err != nil {
			s.log.Error("cannot record job pid", "err", err)
		}
	}
	fmt.Fprintf(status, "ok %d\n", pid)
	status.Close()

	exits := make(chan childExit, 64)
	go reap(exits)
	job, timedOut := s.supervise(pid, exits)
	end := time.Now()

	// Whatever the job left behind dies with it, and is reaped.
	if err := s.grp.killAll(s.self); err != nil {
		s.log.Warn("leftover processes", "err", err)
	}
	if err := killTree(s.self); err != nil {
		s.log.Warn("leftover processes", "err", err)
	}
	drain(exits, 10*time.Second)

	o := s.outcome(job, timedOut, startErr, start, end)
	if !s.keepResult(o) {
		// The state dir is gone (removed under us): still leave no cgroup.
		s.cleanup()
		return 5
	}
	// The shim removes the empty cgroup itself (Release does it again if
	// the shim could not), so that a daemon that stops for good leaves
	// none behind.
	s.cleanup()
	return 0
}

// keepResult writes the job's outcome, and keeps it (retrying, the shim
// alive and its agent waiting) while the node can't store it: a full disk
// or a lack of descriptors must never turn the job's own result into a
// host failure. It gives up only when the state directory is gone (the
// agent released the job) and then returns false.
func (s *shim) keepResult(o Outcome) bool {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := writeJSON(filepath.Join(s.dir, resultFile), o)
		if err == nil {
			if attempt > 1 {
				s.log.Info("result written after retries", "attempts", attempt)
			}
			return true
		}
		if _, serr := os.Stat(s.dir); errors.Is(serr, os.ErrNotExist) {
			s.log.Error("state directory gone; result not written", "err", err)
			return false
		}
		if attempt == 1 || attempt%50 == 0 {
			s.log.Error("cannot write result; keeping it and retrying", "err", err, "attempt", attempt, "state", o.State)
		}
		time.Sleep(delay)
		delay = min(delay*2, 2*time.Second)
	}
}

// cleanup removes the job's cgroup, now empty. The state directory stays
// until the agent's Release.
func (s *shim) cleanup() {
	if err := s.grp.leave(); err != nil {
		s.log.Warn("cannot leave job cgroup", "err", err)
	}
	if err := s.grp.remove(); err != nil {
		s.log.Warn("cannot remove job cgroup", "err", err)
	}
}

// startJob starts the init stage, which becomes the job. startErr is the
// init stage's message when it could not exec the command (the process then
// exits with 1, 126 or 127 and is reaped as usual); err means nothing runs.
func (s *shim) startJob() (pid int, startErr string, err error) {
	spec := s.rec.Spec
	cfg := initConfig{Argv: spec.Argv, Env: JobEnv(spec), Dir: spec.Dir, Stdout: spec.Stdout, Stderr: spec.Stderr, Umask: spec.Umask, CheckpointDir: spec.CheckpointDir}
	if spec.Script != "" {
		cfg.Argv = scriptArgv(spec.Script, filepath.Join(s.dir, scriptFile))
	}
	if s.rec.Isolation == IsolationNone && spec.Memory > 0 {
		cfg.DataLimit = uint64(spec.Memory)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, "", fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, "", fmt.Errorf("config pipe: %w", err)
	}
	defer cfgR.Close()
	defer cfgW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, "", fmt.Errorf("error pipe: %w", err)
	}
	defer errR.Close()
	defer errW.Close()

	attr := &syscall.SysProcAttr{
		// A session of its own (hence a process group: pgid = pid) for
		// signalling the job as a whole; CRIU then needs no --shell-job.
		Setsid: true,
	}
	if spec.UID != uint32(os.Geteuid()) || spec.GID != uint32(os.Getegid()) || os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups}
	}
	release, err := s.grp.prepareChild(attr)
	if err != nil {
		return 0, "", err
	}
	defer release()
	p, err := os.StartProcess("/proc/self/exe", []string{"hpc-init"}, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{shimEnv + "=init"},
		Files: []*os.File{devnull, devnull, devnull, cfgR, errW},
		Sys:   attr,
	})
	if err != nil {
		return 0, "", fmt.Errorf("start job process: %w", err)
	}
	cfgR.Close()
	errW.Close()
	if s.oomProtected {
		// The init stage waits for its configuration: the job never runs
		// with the shim's -1000, which would make it unkillable at its
		// memory limit and let it set -1000 again itself. Written by
		// root, 0 is also the floor it may go back down to.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", p.Pid), []byte("0"), 0); err != nil {
			s.log.Warn("cannot reset the job's OOM score", "err", err)
		}
	}
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		s.log.Warn("cannot send the job configuration", "err", err)
	}
	cfgW.Close()
	// EOF here means the exec succeeded (fd 4 was close-on-exec) or the
	// init stage is gone; any text is its reason for not running the job.
	msg, _ := io.ReadAll(errR)
	pid = p.Pid
	_ = p.Release() // reaped by reap() through wait4(-1)
	return pid, string(msg), nil
}

// reap collects every child, including re-parented orphans, until none is left.
func reap(out chan<- childExit) {
	defer close(out)
	for {
		var e childExit
		pid, err := unix.Wait4(-1, &e.ws, 0, &e.ru)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return // ECHILD: nothing left below us
		}
		e.pid = pid
		out <- e
	}
}

func drain(exits <-chan childExit, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case _, ok := <-exits:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// supervise waits for the job's main process and enforces the walltime:
// the warning signal at Walltime-WarnBefore, SIGTERM to the job's process
// group at the walltime, and after the grace time SIGKILL to all of it.
func (s *shim) supervise(pid int, exits <-chan childExit) (childExit, bool) {
	spec := s.rec.Spec
	var warnC, wallC, graceC <-chan time.Time
	if spec.Walltime > 0 {
		wall := time.NewTimer(spec.Walltime)
		defer wall.Stop()
		wallC = wall.C
		if spec.WarnSignal != 0 && spec.WarnBefore > 0 && spec.WarnBefore < spec.Walltime {
			warn := time.NewTimer(spec.Walltime - spec.WarnBefore)
			defer warn.Stop()
			warnC = warn.C
		}
	}
	var leaseC <-chan time.Time
	if spec.FenceAfter > 0 {
		lease := time.NewTicker(leaseTick(spec.FenceAfter))
		defer lease.Stop()
		leaseC = lease.C
	}
	timedOut := false
	for {
		select {
		case <-leaseC:
			age, ok := leaseAge(s.dir)
			if s.fenced > 0 || !ok || age < spec.FenceAfter {
				continue
			}
			// The agent has not heard from the server for almost the DOWN
			// timeout (or is dead): the server is about to run the job
			// elsewhere, so this copy must be gone first.
			s.fenced = age
			s.log.Warn("lease expired: fencing the job", "lease_age", age, "fence_after", spec.FenceAfter)
			if err := s.grp.killAll(s.self); err != nil {
				s.log.Warn("fence", "err", err)
			}
			_ = killTree(s.self)
		case e, ok := <-exits:
			if !ok {
				return childExit{pid: pid, ws: unix.WaitStatus(0xff00)}, timedOut // vanished: report exit 255
			}
			if e.pid == pid {
				return e, timedOut
			}
		case <-warnC:
			s.log.Info("walltime warning", "signal", signalName(spec.WarnSignal))
			_ = unix.Kill(-pid, spec.WarnSignal)
		case <-wallC:
			s.log.Info("walltime reached", "walltime", spec.Walltime)
			timedOut = true
			_ = unix.Kill(-pid, unix.SIGTERM)
			_ = unix.Kill(pid, unix.SIGTERM)
			graceC = time.After(s.rec.KillGrace)
		case <-graceC:
			s.log.Info("grace time over: killing the job")
			if err := s.grp.killAll(s.self); err != nil {
				s.log.Warn("kill after grace", "err", err)
			}
			_ = killTree(s.self)
		}
	}
}

func (s *shim) outcome(job childExit, timedOut bool, startErr string, start, end time.Time) Outcome {
	var oom uint64
	var cpu time.Duration
	var peak int64
	var ok bool
	if n, err := s.grp.oomKills(); err == nil {
		oom = n
	} else {
		s.log.Warn("cannot read OOM counter", "err", err)
	}
	if c, p, k, err := s.grp.usage(); err == nil {
		cpu, peak, ok = c, p, k
	} else {
		s.log.Warn("cannot read usage", "err", err)
	}
	if !ok {
		cpu = time.Duration(job.ru.Utime.Nano() + job.ru.Stime.Nano())
	}
	peak = max(peak, job.ru.Maxrss*1024) // ru_maxrss is in KiB
	c, cancelled := readCancel(s.dir)
	o := classify(exitFacts{
		status: job.ws, timedOut: timedOut, cancelled: cancelled, cancelReason: c.Reason,
		oomKills: oom, spec: s.rec.Spec, isolation: s.rec.Isolation, startErr: startErr,
	})
	if s.fenced > 0 && o.State != StateCompleted {
		o.State, o.HostFailure, o.Fenced = StateFailed, true, true
		o.Reason = fmt.Sprintf("self-fenced: the agent's lease was not renewed for %s (the node lost the server or its agent died)", s.fenced.Round(time.Millisecond))
	}
	o.Start, o.End = start, end
	o.Usage = Usage{Elapsed: end.Sub(start), CPUTime: cpu, PeakMemory: peak}
	return o
}
