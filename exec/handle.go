package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Handle follows one job, launched or adopted by this agent.
type Handle struct {
	e      *Executor
	jobID  uint64
	dir    string
	shim   procIdentity
	jobPID int
	done   chan struct{} // closed once the shim has exited
	sj     *spawnedJob   // the spawner's job (no shim, no state directory)

	mu      sync.Mutex
	outcome *Outcome
}

// newHandle starts watching the shim through pidfd (-1: the shim is already
// gone or unknown).
func (e *Executor) newHandle(jobID uint64, shim procIdentity, jobPID, pidfd int) *Handle {
	h := &Handle{e: e, jobID: jobID, dir: e.jobDir(jobID), shim: shim, jobPID: jobPID, done: make(chan struct{})}
	if pidfd < 0 {
		close(h.done)
		return h
	}
	go func() {
		defer close(h.done)
		defer unix.Close(pidfd)
		if err := waitPidfd(pidfd); err != nil {
			e.log.Warn("watch shim", "job", jobID, "err", err)
		}
	}()
	return h
}

// PID is the job's main process (0 when it never started).
func (h *Handle) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pidLocked()
}

func (h *Handle) pidLocked() int {
	if h.sj != nil {
		return h.jobPID
	}
	if h.jobPID == 0 { // Launch stopped waiting before the shim reported
		var id procIdentity
		if readJSON(filepath.Join(h.dir, jobPIDFile), &id) == nil {
			h.jobPID = id.PID
		}
	}
	return h.jobPID
}

func (h *Handle) running() bool {
	done := h.done
	if h.sj != nil {
		done = h.sj.done
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Wait blocks until the job has ended and returns its outcome. When the shim
// died without writing one (killed, node trouble), the agent kills what is
// left of the job and records the outcome itself.
func (h *Handle) Wait(ctx context.Context) (Outcome, error) {
	if h.sj != nil {
		select {
		case <-h.sj.done:
			return *h.sj.o, nil
		case <-ctx.Done():
			return Outcome{}, fmt.Errorf("wait for job %d: %w", h.jobID, ctx.Err())
		}
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("wait for job %d: %w", h.jobID, ctx.Err())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.outcome != nil {
		return *h.outcome, nil
	}
	o, ok, err := readResult(h.dir)
	if err != nil {
		return Outcome{}, fmt.Errorf("job %d: %w", h.jobID, err)
	}
	if !ok {
		if o, err = h.orphaned(); err != nil {
			return Outcome{}, err
		}
	}
	// The shim removes the cgroup itself; this covers a shim that could not.
	drv, _ := h.e.driverFor(h.jobID)
	if grp, err := drv.load(h.jobID); err == nil {
		if err := grp.remove(); err != nil {
			h.e.log.Warn("remove cgroup", "job", h.jobID, "err", err)
		}
	}
	h.outcome = &o
	return o, nil
}

// orphaned records the outcome of a job whose shim exited without a result.
func (h *Handle) orphaned() (Outcome, error) {
	fi, err := os.Stat(filepath.Join(h.dir, recordFile))
	if err != nil {
		return Outcome{}, fmt.Errorf("job %d: %w", h.jobID, ErrUnknownJob)
	}
	o := Outcome{State: StateFailed, ExitCode: exitSetupFailed, Start: fi.ModTime(), End: time.Now(), HostFailure: true}
	switch {
	case h.shim.PID == 0:
		// Launch records the shim before it releases it, and the shim
		// starts the job only once released: with no shim on record, not
		// one instruction of the job ran, and the job goes back to the
		// queue (checkpoint.Decide) instead of ending NODE_FAIL or FAILED.
		o.Reason = "the agent stopped before the job started"
		o.NeverStarted = true
	case h.pidLocked() == 0:
		o.Reason = "the job's supervisor (shim) died before it reported the job's start; the job was killed"
	default:
		o.Reason = "the job's supervisor (shim) died; the job was killed"
	}
	if c, ok := readCancel(h.dir); ok {
		o.HostFailure = false // cancelled anyway: that is its end
		o.State, o.Reason = StateCancelled, "cancelled"
		if c.Reason != "" {
			o.Reason += ": " + c.Reason
		}
	}
	// In the fallback mode, orphans of a dead shim are out of reach; the
	// cgroup modes still find every process.
	if err := h.e.killJob(h.jobID, 0); err != nil {
		h.e.log.Warn("kill remains of job", "job", h.jobID, "err", err)
	}
	if err := writeJSON(filepath.Join(h.dir, resultFile), o); err != nil {
		return Outcome{}, fmt.Errorf("job %d: %w", h.jobID, err)
	}
	return o, nil
}

// Cancel kills the job's whole process tree: everything in its cgroup (v1:
// freeze, SIGKILL all, thaw; v2: cgroup.kill), or every descendant of the
// shim in the fallback mode. The outcome is CANCELLED unless the job had
// already ended. The request is recorded before anything is killed.
func (h *Handle) Cancel(reason string) error {
	if h.sj != nil {
		if !h.running() {
			return nil // already over: its outcome stands
		}
		if err := h.e.sp.cancel(h.jobID, reason); err != nil {
			return fmt.Errorf("cancel job %d: %w", h.jobID, err)
		}
		return nil
	}
	if !h.running() {
		if _, ok, _ := readResult(h.dir); ok {
			return nil // already over: its outcome stands
		}
	}
	if err := writeJSON(filepath.Join(h.dir, cancelFile), cancelRequest{Reason: reason, Time: time.Now()}); err != nil {
		return fmt.Errorf("cancel job %d: %w", h.jobID, err)
	}
	shimPID := h.shim.PID
	if !h.running() {
		shimPID = 0
	}
	if err := h.e.killJob(h.jobID, shimPID); err != nil {
		return fmt.Errorf("cancel job %d: %w", h.jobID, err)
	}
	return nil
}

// Signal sends sig to the job's process group (its session leader's group),
// as a terminal would: the way checkpoint warnings reach the job.
func (h *Handle) Signal(sig syscall.Signal) error {
	pid := h.PID()
	if pid <= 0 || !h.running() {
		return fmt.Errorf("signal job %d: %w", h.jobID, ErrFinished)
	}
	if err := unix.Kill(-pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal job %d: %w", h.jobID, ErrFinished)
		}
		return fmt.Errorf("signal job %d: %w", h.jobID, err)
	}
	return nil
}
