package agent

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
)

// Checkpoint asks a running job to checkpoint now. Signal mode sends the
// job's warning signal to its process group: the application saves its
// state to HPC_CHECKPOINT_DIR (and, when the request is a stop, exits).
func (l *Local) Checkpoint(id uint64, req api.CheckpointRequest) error {
	h, err := l.handle(id)
	if err != nil {
		return err
	}
	switch req.Mode {
	case "signal":
		sig := unix.SignalNum(req.Signal)
		if sig == 0 {
			return fmt.Errorf("checkpoint job %d: unknown signal %q", id, req.Signal)
		}
		l.log.Info("checkpoint signal", "job", id, "signal", req.Signal, "stop", req.Stop, "reason", req.Reason)
		return h.Signal(sig)
	}
	return fmt.Errorf("checkpoint job %d: mode %q is not supported on %s", id, req.Mode, l.name)
}

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
