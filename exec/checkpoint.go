package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/checkpoint"
)

// prepareCheckpointDir makes the job's checkpoint directory, owned by the
// job's user and private to them, before anything of the job runs. It is
// kept across the job's restarts: an existing one is reused only when it
// is a real directory of that user (never a symlink or someone else's,
// which would hand the job's state to another user).
func prepareCheckpointDir(s Spec) error {
	dir := s.CheckpointDir
	if dir == "" || os.Geteuid() != 0 {
		return nil // the init stage makes it as the user
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return fmt.Errorf("job %d: checkpoint root: %w", s.JobID, err)
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		if err := os.Lchown(dir, int(s.UID), int(s.GID)); err != nil {
			return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
		}
		return nil
	}
	if !os.IsExist(err) {
		return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != s.UID {
		return fmt.Errorf("job %d: %w: checkpoint directory %s exists but is not a directory of uid %d", s.JobID, ErrInvalidSpec, dir, s.UID)
	}
	return nil
}

// restoredPIDFile is where criu writes the pid of the restored tree.
const restoredPIDFile = "restored.pid"

// restoreTimeout bounds a CRIU restore; a job's restore takes seconds.
const restoreTimeout = 2 * time.Minute

// startOrRestore starts the job, or restores it from its CRIU images.
func (s *shim) startOrRestore() (pid int, startErr string, err error) {
	if s.rec.Spec.RestoreFrom == "" {
		return s.startJob()
	}
	pid, err = s.restoreJob()
	return pid, "", err
}

// restoreJob has criu restore the job's process tree inside the job's new
// cgroup. criu runs as a child of the shim in a session of its own; with
// --restore-detached and --restore-sibling the restored tree becomes the
// shim's child, so the shim reaps it and enforces the walltime exactly as
// for a job it started. The tree keeps its user, pids, open files and
// memory; its old pids must be free here (CRIU's rule), which the server
// ensures by restoring only after the dumped run's end was reported.
func (s *shim) restoreJob() (int, error) {
	spec := s.rec.Spec
	c := checkpoint.CRIU{Path: s.rec.CRIUPath}
	pidFile := filepath.Join(s.dir, restoredPIDFile)
	args := append(c.RestoreArgs(spec.RestoreFrom, pidFile), "--restore-sibling")
	attr := &syscall.SysProcAttr{Setsid: true}
	release, err := s.grp.prepareChild(attr)
	if err != nil {
		return 0, err
	}
	defer release()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	logf, err := os.OpenFile(filepath.Join(s.dir, shimLogFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, fmt.Errorf("open shim log: %w", err)
	}
	defer logf.Close()
	p, err := os.StartProcess(args[0], args, &os.ProcAttr{Dir: "/", Files: []*os.File{devnull, logf, logf}, Sys: attr})
	if err != nil {
		return 0, fmt.Errorf("start criu restore: %w", err)
	}
	// A restore that cannot finish (a lock the tree held is taken by
	// someone else now) must not hold the job's launch forever.
	timer := time.AfterFunc(restoreTimeout, func() { _ = unix.Kill(-p.Pid, unix.SIGKILL) })
	st, err := p.Wait()
	timedOut := !timer.Stop()
	if err == nil && !st.Success() {
		err = fmt.Errorf("%s", st)
		if timedOut {
			err = fmt.Errorf("gave up after %s", restoreTimeout)
		}
	}
	if err != nil {
		// Whatever criu had restored so far goes with it.
		if kerr := s.grp.killAll(s.self); kerr != nil {
			s.log.Warn("kill a failed restore", "err", kerr)
		}
		return 0, fmt.Errorf("criu restore from %s failed (%v): see %s", spec.RestoreFrom, err, filepath.Join(spec.RestoreFrom, "restore.log"))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("criu restore: %w", err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return 0, fmt.Errorf("criu restore: bad pid file %q", b)
	}
	s.log.Info("job restored from its CRIU checkpoint", "pid", pid, "images", spec.RestoreFrom)
	return pid, nil
}

// Checkpoint dumps the job's whole process tree with CRIU into dir. With
// leaveRunning the job goes on (a periodic checkpoint); without, the dump
// ends it (before walltime, preemption or drain) and its outcome is
// CANCELLED with a reason that says so. A failed dump leaves the job
// running and the last good image in place.
func (h *Handle) Checkpoint(ctx context.Context, dir string, leaveRunning bool) error {
	c := h.e.cfg.CRIU
	if c == nil {
		return fmt.Errorf("checkpoint job %d: %w", h.jobID, checkpoint.ErrNoCRIU)
	}
	pid := h.PID()
	if pid <= 0 || !h.running() {
		return fmt.Errorf("checkpoint job %d: %w", h.jobID, ErrFinished)
	}
	if !leaveRunning {
		// Recorded first, so whoever writes the outcome knows why the
		// tree was killed.
		if err := writeJSON(filepath.Join(h.dir, cancelFile), cancelRequest{Reason: "checkpointed with CRIU and stopped", Time: time.Now()}); err != nil {
			return fmt.Errorf("checkpoint job %d: %w", h.jobID, err)
		}
	}
	if err := c.Dump(ctx, pid, dir, leaveRunning); err != nil {
		if !leaveRunning {
			_ = os.Remove(filepath.Join(h.dir, cancelFile))
		}
		return fmt.Errorf("checkpoint job %d: %w", h.jobID, err)
	}
	return nil
}
