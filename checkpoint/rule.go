package checkpoint

import (
	"fmt"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Mode is how a job is checkpointed.
type Mode string

// The checkpoint modes. ModeNone: the job has no checkpoint block.
const (
	ModeNone   Mode = ""
	ModeSignal Mode = "signal" // the application saves its own state when signalled
	ModeCRIU   Mode = "criu"   // the node dumps the whole process tree with CRIU
)

// ExitRestart is the exit code by which a job says "I saved a checkpoint,
// run me again" (HTCondor's convention).
const ExitRestart = 85

// DefaultRequeueRestarts is the restart budget of a job that allows
// requeueing (requeue = true) but has no checkpoint block: small, so that a
// job that crashes every node it lands on cannot loop forever.
const DefaultRequeueRestarts = 3

// OnFailure is what happens to a CRIU job whose dump fails.
type OnFailure string

// The on_failure choices.
const (
	OnFailureRequeue OnFailure = "requeue" // requeue from the last good image (or from scratch)
	OnFailureKill    OnFailure = "kill"    // end the job with the reason
)

// Policy is a job's checkpoint-restart policy, as its job file declares it.
type Policy struct {
	Mode        Mode
	Signal      string        // warning signal (signal mode), e.g. "SIGUSR1"
	Warn        time.Duration // how long before walltime, preemption or drain
	Interval    time.Duration // periodic checkpoints; 0 = none
	MaxRestarts int           // restarts allowed (with a checkpoint block: as given, 0 allowed)
	RetryOnExit []int         // exit codes that restart the job like exit 85
	OnFailure   OnFailure     // CRIU mode: when a dump fails
	// Requeue: the job may be requeued after a node failure, preemption or
	// drain even without a checkpoint block (it then restarts from scratch).
	Requeue bool
}

// Restartable reports whether the system may stop the job and run it again
// (drain with requeue, preemption, a lost node).
func (p Policy) Restartable() bool { return p.Mode != ModeNone || p.Requeue }

// Budget is the number of restarts the job may use.
func (p Policy) Budget() int {
	if p.Mode == ModeNone {
		if p.MaxRestarts > 0 {
			return p.MaxRestarts
		}
		return DefaultRequeueRestarts
	}
	return p.MaxRestarts
}

// Cause is why the system stopped a run; CauseNone when the run ended on
// its own.
type Cause string

// The causes of a stop.
const (
	CauseNone       Cause = ""
	CauseWalltime   Cause = "walltime"   // warned ahead of its walltime (checkpoint jobs only)
	CausePreemption Cause = "preemption" // a higher-priority job took its resources
	CauseDrain      Cause = "drain"      // its node was drained with --requeue
	CauseNodeFail   Cause = "node-fail"  // its node or agent was lost
	CauseRequeue    Cause = "requeue"    // a user or admin asked for a requeue (hpcsub requeue)
)

// Run is how one run of the job ended, as far as the rule needs it.
type Run struct {
	State        api.JobState // the outcome's state: COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL...
	ExitCode     int
	Cancelled    bool // the user cancelled the job
	NeverStarted bool // not one instruction of the job ran
	// CheckpointFailed: the run's last checkpoint (a CRIU dump) failed.
	CheckpointFailed bool
}

// Decision is what becomes of the job after a run.
type Decision struct {
	// Requeue: the job goes back to PENDING through REQUEUED.
	Requeue bool
	// UsesRestart: the requeue counts against the job's restarts (a run
	// that never started does not).
	UsesRestart bool
	// State is the job's final state when it is not requeued.
	State api.JobState
	// Reason says why, in one line for users.
	Reason string
}

// Decide applies the restart rule to one ended run. restarts is how many
// restarts the job has used so far. It is pure: same input, same decision.
func Decide(p Policy, r Run, cause Cause, restarts int) Decision {
	left := restarts < p.Budget()
	switch {
	case r.Cancelled:
		return Decision{State: api.StateCancelled, Reason: "cancelled by user"}
	case r.NeverStarted:
		// Nothing of it ran: it is as if it had never been started.
		return Decision{Requeue: true, Reason: "never started: " + orState(r)}
	}
	if r.CheckpointFailed && p.OnFailure == OnFailureKill && cause != CauseNone {
		// The job said: rather end than restart from an older image.
		return Decision{State: lastState(r, cause), Reason: "its checkpoint failed and on_failure = \"kill\""}
	}
	if cause != CauseNone && stoppable(p, cause) {
		if left {
			return Decision{Requeue: true, UsesRestart: true,
				Reason: fmt.Sprintf("stopped by the system (%s), restart %d of %d", describe(cause), restarts+1, p.Budget())}
		}
		return Decision{State: lastState(r, cause), Reason: fmt.Sprintf("stopped by the system (%s) with no restarts left (max_restarts = %d)", describe(cause), p.Budget())}
	}
	if p.Mode != ModeNone && r.State != api.StateCompleted {
		asks := r.ExitCode == ExitRestart
		retry := slices.Contains(p.RetryOnExit, r.ExitCode)
		if asks || retry {
			why := fmt.Sprintf("exit code %d: checkpoint saved, run again", r.ExitCode)
			if !asks {
				why = fmt.Sprintf("exit code %d is declared retryable (retry_on_exit)", r.ExitCode)
			}
			if left {
				return Decision{Requeue: true, UsesRestart: true, Reason: fmt.Sprintf("%s, restart %d of %d", why, restarts+1, p.Budget())}
			}
			return Decision{State: r.State, Reason: fmt.Sprintf("%s, but no restarts are left (max_restarts = %d)", why, p.Budget())}
		}
	}
	return Decision{State: r.State}
}

// stoppable reports whether a stop of this cause leads to a restart for
// this job: a walltime warning only for jobs that checkpoint, the others
// for every job that may be requeued.
func stoppable(p Policy, c Cause) bool {
	switch c {
	case CauseWalltime:
		return p.Mode != ModeNone
	case CauseRequeue:
		return true // asked for explicitly, as Slurm's scontrol requeue
	}
	return p.Restartable()
}

// lastState is the final state of a stopped job that has no restarts left:
// the run's own, except that a run stopped for its walltime is TIMEOUT
// even when it saved and exited 0 on the warning (its work is not done),
// and a lost node is NODE_FAIL whatever was reported.
func lastState(r Run, c Cause) api.JobState {
	switch {
	case c == CauseWalltime:
		return api.StateTimeout
	case c == CauseNodeFail || r.State == "":
		return api.StateNodeFail
	}
	return r.State
}

func orState(r Run) string {
	if r.State == "" {
		return "launch cut short"
	}
	return "launch cut short (" + string(r.State) + ")"
}

// describe names a cause for users.
func describe(c Cause) string {
	switch c {
	case CauseWalltime:
		return "checkpoint before walltime"
	case CausePreemption:
		return "preempted by a higher-priority job"
	case CauseDrain:
		return "node drained with requeue"
	case CauseNodeFail:
		return "node lost"
	case CauseRequeue:
		return "requeue asked for"
	}
	return string(c)
}

// WarnAt is when a run started at start is sent its warning ahead of its
// walltime; false when the job is not warned (no checkpoint block, or a
// warning that would come before the run starts).
func (p Policy) WarnAt(start time.Time, walltime time.Duration) (time.Time, bool) {
	if p.Mode == ModeNone || walltime <= 0 || p.Warn <= 0 || p.Warn >= walltime {
		return time.Time{}, false
	}
	return start.Add(walltime - p.Warn), true
}

// NextPeriodic is when the next periodic checkpoint of a run is due: one
// interval after the later of its start and its last checkpoint.
func (p Policy) NextPeriodic(start, last time.Time) (time.Time, bool) {
	if p.Mode == ModeNone || p.Interval <= 0 {
		return time.Time{}, false
	}
	from := start
	if last.After(from) {
		from = last
	}
	return from.Add(p.Interval), true
}

// Grace is how long a warned job may run on before the system stops it
// (preemption, drain): its warn time, or a short default.
func (p Policy) Grace() time.Duration {
	if p.Warn > 0 {
		return p.Warn
	}
	return 30 * time.Second
}
