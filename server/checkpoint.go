package server

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/checkpoint"
	"github.com/hpc-sched/hpc/placement"
)

// Checkpointer is implemented by agents that can checkpoint a running job
// on request: send its warning signal, or dump it with CRIU. An agent
// without it gets no checkpoint requests; its jobs are still stopped and
// requeued by the rule, from whatever they saved on their own.
type Checkpointer interface {
	Checkpoint(jobID uint64, req api.CheckpointRequest) error
}

// Checkpoint queues a checkpoint of the job for the agent: in signal mode
// the job's warning signal (a plain signal command), otherwise a
// checkpoint command the agent carries out (a CRIU dump).
func (a *agentSession) Checkpoint(jobID uint64, req api.CheckpointRequest) error {
	if req.Mode == string(checkpoint.ModeSignal) {
		return a.Signal(jobID, req.Signal)
	}
	return a.push(api.Command{Kind: api.CommandCheckpoint, JobID: jobID, Checkpoint: &req})
}

// active reports whether a job in state st holds its nodes: it runs, or it
// runs while it checkpoints before being stopped.
func active(st api.JobState) bool {
	return st == api.StateRunning || st == api.StateCheckpointing
}

// policy is the job's checkpoint-restart policy for the rule.
func (j *job) policy() checkpoint.Policy {
	return checkpoint.Policy{
		Mode:        checkpoint.Mode(j.CheckpointMode),
		Signal:      j.WarnSignal,
		Warn:        j.WarnBefore,
		Interval:    j.CheckpointInterval,
		MaxRestarts: j.MaxRestarts,
		RetryOnExit: j.RetryOnExit,
		OnFailure:   checkpoint.OnFailure(j.OnFailure),
		Requeue:     j.Requeue,
	}
}

// maxRestarts is the job's restart budget (checkpoint.Policy.Budget).
func (j *job) maxRestarts() int { return j.policy().Budget() }

// finishRun applies the restart rule to the run that ended with o, on j (a
// copy being changed): the job is requeued or ends, and run (its
// accounting record) says why the system stopped it and how often it
// was checkpointed.
func (j *job) finishRun(o api.Outcome, run *api.Run) {
	cause := checkpoint.Cause(j.StopCause)
	p := j.policy()
	switch {
	case cause == checkpoint.CauseNone && j.RequeueRequested:
		cause = checkpoint.CauseRequeue
	case cause == checkpoint.CauseNone && o.State == api.StateTimeout && p.Mode != checkpoint.ModeNone:
		// Killed at its walltime without the server's warning having gone
		// out (the server was down at the time): still a stop by the
		// system, and the job restarts from what it saved last.
		cause = checkpoint.CauseWalltime
	}
	if o.CheckpointError != "" {
		j.CheckpointError = o.CheckpointError
	}
	r := checkpoint.Run{State: o.State, ExitCode: o.ExitCode, NeverStarted: o.NeverStarted,
		Cancelled: j.CancelRequested, CheckpointFailed: o.CheckpointError != ""}
	d := checkpoint.Decide(p, r, cause, j.Restarts)
	run.Stop = string(cause)
	run.Checkpoints, run.LastCheckpoint, run.CheckpointError = j.Checkpoints, j.LastCheckpoint, j.CheckpointError
	if d.Requeue {
		why := d.Reason
		if cause == checkpoint.CauseNodeFail && o.Reason != "" {
			why = o.Reason + "; " + why // what was lost, then the rule
		}
		j.requeue(why, o.End, d.UsesRestart)
		return
	}
	reason := o.Reason
	switch {
	case r.Cancelled:
		reason = "cancelled by user"
	case d.Reason != "" && reason != "":
		reason += "; " + d.Reason
	case d.Reason != "":
		reason = d.Reason
	}
	j.to(d.State, reason, o.End)
}

// noteCheckpoint counts a checkpoint asked of the current run.
func (j *job) noteCheckpoint(now time.Time) {
	t := now
	j.Checkpoints++
	j.LastCheckpoint = &t
}

// checkpointRequest is what the job's agents are asked to do.
func (j *job) checkpointRequest(stop bool, reason string) api.CheckpointRequest {
	return api.CheckpointRequest{Mode: j.CheckpointMode, Signal: j.WarnSignal, Dir: j.CheckpointDir, Stop: stop, Reason: reason}
}

// checkpointCall is a request to send to the agents of a job once the
// change that asks for it is committed.
type checkpointCall struct {
	id     uint64
	agents []Agent
	req    api.CheckpointRequest
	kill   string // non-empty: stop the job (Cancel) with this reason instead
}

func (s *Server) send(calls []checkpointCall) {
	for _, c := range calls {
		for _, a := range c.agents {
			var err error
			if c.kill != "" {
				err = a.Cancel(c.id, c.kill)
			} else if cp, ok := a.(Checkpointer); ok {
				err = cp.Checkpoint(c.id, c.req)
			} else {
				err = errors.New("the node's agent cannot checkpoint jobs")
			}
			if err != nil {
				s.log.Warn("checkpoint request", "job", c.id, "err", err)
			}
		}
	}
}

// stopJobs warns the running jobs ids that the system is about to stop
// them (drain with requeue, preemption): a checkpointing job is moved to
// CHECKPOINTING, asked to checkpoint, and stopped when its warn time is
// over (checkpointPass); any other job is stopped at once. The stop is
// committed before any agent hears of it, so after a crash it is still a
// requeue.
func (s *Server) stopJobs(ids []uint64, cause checkpoint.Cause, now time.Time) error {
	var calls []checkpointCall
	_, err := s.updateJobs(ids, func(j *job) error {
		if !active(j.State) || j.CancelRequested || j.StopCause != "" {
			// Not running, or already being stopped: the first cause and
			// deadline stand.
			return skipJob
		}
		j.StopCause = string(cause)
		c := checkpointCall{id: j.ID, agents: s.agentsOfLocked(j)}
		p := j.policy()
		if p.Mode == checkpoint.ModeNone {
			c.kill = "stopped by the system: " + string(cause)
		} else {
			deadline := now.Add(p.Grace())
			j.StopDeadline = &deadline
			c.req = j.checkpointRequest(true, fmt.Sprintf("%s: checkpoint within %s", cause, p.Grace()))
			j.noteCheckpoint(now)
			j.to(api.StateCheckpointing, fmt.Sprintf("warned (%s): checkpoint and stop within %s", cause, p.Grace()), now)
		}
		calls = append(calls, c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop jobs (%s): %w", cause, err)
	}
	s.send(calls)
	return nil
}

// checkpointPass sends what is due at now: the warning ahead of each
// checkpointing job's walltime, periodic checkpoints, and the stop of
// warned jobs whose grace is over. Each is committed before it is sent.
func (s *Server) checkpointPass(now time.Time) {
	s.mu.Lock()
	var due []uint64
	for id, j := range s.jobs {
		if _, ok := j.checkpointDue(now); ok {
			due = append(due, id)
		}
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return
	}
	var calls []checkpointCall
	_, err := s.updateJobs(due, func(j *job) error {
		what, ok := j.checkpointDue(now)
		if !ok {
			return skipJob
		}
		p := j.policy()
		c := checkpointCall{id: j.ID, agents: s.agentsOfLocked(j)}
		switch what {
		case dueStop:
			j.StopDeadline = nil // asked once; the outcome follows
			c.kill = fmt.Sprintf("stopped by the system (%s) after its %s warning", j.StopCause, p.Grace())
		case dueWalltime:
			j.StopCause = string(checkpoint.CauseWalltime)
			j.noteCheckpoint(now)
			j.to(api.StateCheckpointing, fmt.Sprintf("warned %s before its walltime: checkpoint now", p.Warn), now)
			c.req = j.checkpointRequest(true, "walltime in "+p.Warn.String())
		case duePeriodic:
			j.noteCheckpoint(now)
			c.req = j.checkpointRequest(false, "periodic checkpoint")
		}
		calls = append(calls, c)
		return nil
	})
	if err != nil {
		s.log.Error("persist checkpoint requests", "err", err)
		return
	}
	s.send(calls)
}

type dueKind int

const (
	dueStop     dueKind = iota + 1 // a warned job's grace is over
	dueWalltime                    // the warning before the walltime
	duePeriodic                    // an interval since the last checkpoint
)

// checkpointDue says what, if anything, is due for j at now.
func (j *job) checkpointDue(now time.Time) (dueKind, bool) {
	if !active(j.State) || j.CancelRequested || j.Start == nil {
		return 0, false
	}
	p := j.policy()
	switch {
	case j.StopDeadline != nil:
		return dueStop, !now.Before(*j.StopDeadline)
	case j.StopCause != "" || p.Mode == checkpoint.ModeNone:
		return 0, false // being stopped, or nothing to checkpoint
	}
	if at, ok := p.WarnAt(*j.Start, j.Walltime); ok && !now.Before(at) {
		return dueWalltime, true
	}
	var last time.Time
	if j.LastCheckpoint != nil {
		last = *j.LastCheckpoint
	}
	if at, ok := p.NextPeriodic(*j.Start, last); ok && !now.Before(at) {
		return duePeriodic, true
	}
	return 0, false
}

// criuFeature is the node label that CRIU jobs need: the placer matches it
// like any other feature, so a criu job only goes where it can be dumped
// and restored, and one that no node can take is refused at submit.
const criuFeature = "criu"

// nodeCheckpointModes are the checkpoint modes a node takes.
func nodeCheckpointModes(reg api.NodeRegistration) []string {
	if reg.CRIU != "" {
		return []string{string(checkpoint.ModeSignal), string(checkpoint.ModeCRIU)}
	}
	return []string{string(checkpoint.ModeSignal)}
}

// nodeFeatures are the node's labels for the placer: its own, and "criu"
// where the agent found a working CRIU.
func nodeFeatures(reg api.NodeRegistration) []string {
	if reg.CRIU == "" || slices.Contains(reg.Features, criuFeature) {
		return reg.Features
	}
	return append(slices.Clip(reg.Features), criuFeature)
}

// placementFeatures are the labels the job needs: its own, and "criu" for
// a CRIU job.
func (j *job) placementFeatures() []string {
	if checkpoint.Mode(j.CheckpointMode) != checkpoint.ModeCRIU || slices.Contains(j.Features, criuFeature) {
		return j.Features
	}
	return append(slices.Clip(j.Features), criuFeature)
}

// placementRunning is a running job as the placer sees it, with what
// preemption needs: a job may be preempted when it allows it, would be
// requeued for it (a checkpoint block or requeue = true) and has restarts
// left, so that a victim is never just killed.
func (j *job) placementRunning(start time.Time) placement.Running {
	r := placement.Running{JobID: j.ID, End: start.Add(j.Walltime), Nodes: j.Alloc, Priority: j.Priority, Since: start,
		Stopping: j.StopCause != "" || j.CancelRequested}
	p := j.policy()
	r.Preemptible = j.Preemptible && p.Restartable() && j.Restarts < p.Budget() && !r.Stopping
	if j.LastCheckpoint != nil && j.LastCheckpoint.After(start) {
		r.Since = *j.LastCheckpoint
	}
	return r
}

// preempt carries out the placer's preemptions: each victim is warned,
// checkpointed and stopped (stopJobs), then requeued by the restart rule;
// its preemptor starts once the resources are free.
func (s *Server) preempt(ps []placement.Preemption, now time.Time) {
	for _, p := range ps {
		s.log.Info("preempting", "job", p.JobID, "victims", p.Victims, "nodes", p.Nodes,
			"lost_gpu_s", p.LostGPUSeconds, "lost_cpu_s", p.LostCPUSeconds)
		if err := s.stopJobs(p.Victims, checkpoint.CausePreemption, now); err != nil {
			s.log.Error("preempt", "job", p.JobID, "err", err)
		}
	}
}
