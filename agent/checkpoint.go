package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/checkpoint"
)

// Checkpointer is implemented by executors that checkpoint jobs
// themselves (CRIU dumps); Local does.
type Checkpointer interface {
	Checkpoint(jobID uint64, req api.CheckpointRequest) error
}

// checkpoint carries out a checkpoint command.
func (r *Runner) checkpoint(c api.Command) {
	cp, ok := r.ex.(Checkpointer)
	if c.Checkpoint == nil || !ok {
		r.log.Warn("ignoring a checkpoint command this node cannot carry out", "job", c.JobID)
		return
	}
	if err := cp.Checkpoint(c.JobID, *c.Checkpoint); err != nil {
		r.log.Warn("checkpoint", "job", c.JobID, "err", err)
	}
}

// takeCheckpointError returns and forgets the last failed checkpoint of
// a job; it goes out with the job's outcome.
func (l *Local) takeCheckpointError(id uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.ckptErrs[id]
	delete(l.ckptErrs, id)
	return e
}

// setCheckpointError records (or, with "", clears) a job's last failure.
func (l *Local) setCheckpointError(id uint64, e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ckptErrs == nil {
		l.ckptErrs = map[uint64]string{}
	}
	if e == "" {
		delete(l.ckptErrs, id)
	} else {
		l.ckptErrs[id] = e
	}
}

// Checkpoint asks a running job to checkpoint now. Signal mode sends the
// job's warning signal to its process group: the application saves its
// state to HPC_CHECKPOINT_DIR (and, when the request is a stop, exits).
// CRIU mode dumps the job's whole process tree beside its checkpoint
// directory (checkpoint.ImageDir), in the background: a dump takes a
// while and must not hold up the node's other commands. A stop dump ends
// the job; a failed dump leaves it running and is reported with its
// outcome.
func (l *Local) Checkpoint(id uint64, req api.CheckpointRequest) error {
	switch req.Mode {
	case string(checkpoint.ModeSignal):
		l.log.Info("checkpoint signal", "job", id, "signal", req.Signal, "stop", req.Stop, "reason", req.Reason)
		return l.Signal(id, req.Signal)
	case string(checkpoint.ModeCRIU):
		h, err := l.handle(id)
		if err != nil {
			return err
		}
		go func() {
			err := h.Checkpoint(l.ctx, checkpoint.ImageDir(req.Dir), !req.Stop)
			if err != nil {
				l.log.Warn("CRIU checkpoint failed", "job", id, "stop", req.Stop, "err", err)
				l.setCheckpointError(id, err.Error())
				return
			}
			l.setCheckpointError(id, "")
			l.log.Info("CRIU checkpoint", "job", id, "stop", req.Stop, "reason", req.Reason)
		}()
		return nil
	}
	return fmt.Errorf("checkpoint job %d: mode %q is not supported on %s", id, req.Mode, l.name)
}

// restoreFrom is the image a criu job restarts from: its last good dump,
// when there is one and it has run before.
func restoreFrom(a api.Assignment) string {
	if a.CheckpointMode != string(checkpoint.ModeCRIU) || a.CheckpointDir == "" || a.RestartCount == 0 {
		return ""
	}
	dir := checkpoint.ImageDir(a.CheckpointDir)
	if !checkpoint.HasImage(dir) || !rootOnly(dir) || !rootOnly(filepath.Dir(dir)) {
		// Images a user could have written are never restored as root:
		// the job starts afresh instead (its own files are still there).
		return ""
	}
	return dir
}

// rootOnly reports whether path is a directory of root's that nobody else
// may write to.
func rootOnly(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && fi.Mode().Perm()&0o022 == 0
}
