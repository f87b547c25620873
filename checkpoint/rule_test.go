package checkpoint

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	signal := Policy{Mode: ModeSignal, MaxRestarts: 2, Warn: time.Minute}
	retry := Policy{Mode: ModeSignal, MaxRestarts: 2, RetryOnExit: []int{75}}
	requeueOnly := Policy{Requeue: true}
	plain := Policy{}
	zero := Policy{Mode: ModeSignal, MaxRestarts: 0}
	tests := []struct {
		name     string
		p        Policy
		r        Run
		cause    Cause
		restarts int
		want     Decision
		reason   string // substring of the reason
	}{
		{"completed on its own is final", signal, Run{State: "COMPLETED"}, CauseNone, 0,
			Decision{State: "COMPLETED"}, ""},
		{"failed on its own is final", signal, Run{State: "FAILED", ExitCode: 3}, CauseNone, 0,
			Decision{State: "FAILED"}, ""},
		{"exit 0 after the walltime warning is requeued", signal, Run{State: "COMPLETED"}, CauseWalltime, 0,
			Decision{Requeue: true, UsesRestart: true}, "restart 1 of 2"},
		{"killed at walltime after the warning is requeued", signal, Run{State: "TIMEOUT", ExitCode: 143}, CauseWalltime, 1,
			Decision{Requeue: true, UsesRestart: true}, "restart 2 of 2"},
		{"walltime with no restarts left keeps its last state", signal, Run{State: "TIMEOUT"}, CauseWalltime, 2,
			Decision{State: "TIMEOUT"}, "no restarts left"},
		{"walltime exit 0 with no restarts left is a timeout", signal, Run{State: "COMPLETED"}, CauseWalltime, 2,
			Decision{State: "TIMEOUT"}, "max_restarts = 2"},
		{"preempted with no restarts left keeps its last state", signal, Run{State: "CANCELLED"}, CausePreemption, 2,
			Decision{State: "CANCELLED"}, "no restarts left"},
		{"walltime of a job without checkpoint is a timeout", requeueOnly, Run{State: "TIMEOUT"}, CauseWalltime, 0,
			Decision{State: "TIMEOUT"}, ""},
		{"preempted checkpoint job is requeued whatever its exit", signal, Run{State: "FAILED", ExitCode: 1}, CausePreemption, 0,
			Decision{Requeue: true, UsesRestart: true}, "preempted"},
		{"drained requeue-only job is requeued", requeueOnly, Run{State: "CANCELLED"}, CauseDrain, 0,
			Decision{Requeue: true, UsesRestart: true}, "drained"},
		{"requeue-only job has a default budget", requeueOnly, Run{State: "NODE_FAIL"}, CauseNodeFail, DefaultRequeueRestarts,
			Decision{State: "NODE_FAIL"}, "no restarts left"},
		{"an explicit requeue restarts even a plain job", plain, Run{State: "CANCELLED"}, CauseRequeue, 0,
			Decision{Requeue: true, UsesRestart: true}, "requeue asked for"},
		{"drain of a plain job is final", plain, Run{State: "CANCELLED"}, CauseDrain, 0,
			Decision{State: "CANCELLED"}, ""},
		{"node failure with restarts left", signal, Run{State: "NODE_FAIL"}, CauseNodeFail, 0,
			Decision{Requeue: true, UsesRestart: true}, "node lost"},
		{"node failure without restarts is NODE_FAIL", signal, Run{State: "FAILED"}, CauseNodeFail, 2,
			Decision{State: "NODE_FAIL"}, ""},
		{"exit 85 asks for a restart", signal, Run{State: "FAILED", ExitCode: 85}, CauseNone, 0,
			Decision{Requeue: true, UsesRestart: true}, "exit code 85"},
		{"exit 85 with no restarts left fails", signal, Run{State: "FAILED", ExitCode: 85}, CauseNone, 2,
			Decision{State: "FAILED"}, "no restarts are left"},
		{"exit 85 of a job without checkpoint is a failure", plain, Run{State: "FAILED", ExitCode: 85}, CauseNone, 0,
			Decision{State: "FAILED"}, ""},
		{"max_restarts = 0 never restarts", zero, Run{State: "FAILED", ExitCode: 85}, CauseNone, 0,
			Decision{State: "FAILED"}, "max_restarts = 0"},
		{"retryable exit code", retry, Run{State: "FAILED", ExitCode: 75}, CauseNone, 0,
			Decision{Requeue: true, UsesRestart: true}, "retry_on_exit"},
		{"other exit codes are not retried", retry, Run{State: "FAILED", ExitCode: 74}, CauseNone, 0,
			Decision{State: "FAILED"}, ""},
		{"cancel wins over everything", signal, Run{State: "FAILED", ExitCode: 85, Cancelled: true}, CausePreemption, 0,
			Decision{State: "CANCELLED"}, "cancelled"},
		{"a run that never started uses no restart", zero, Run{State: "FAILED", NeverStarted: true}, CauseNone, 0,
			Decision{Requeue: true}, "never started"},
		{"failed dump with on_failure kill ends the job", Policy{Mode: ModeCRIU, MaxRestarts: 3, OnFailure: OnFailureKill},
			Run{State: "CANCELLED", CheckpointFailed: true}, CauseDrain, 0, Decision{State: "CANCELLED"}, "on_failure"},
		{"failed dump with on_failure requeue restarts from the last image", Policy{Mode: ModeCRIU, MaxRestarts: 3, OnFailure: OnFailureRequeue},
			Run{State: "TIMEOUT", CheckpointFailed: true}, CauseWalltime, 0, Decision{Requeue: true, UsesRestart: true}, "restart 1 of 3"},
		{"out of memory on its own is final", signal, Run{State: "OUT_OF_MEMORY", ExitCode: 137}, CauseNone, 0,
			Decision{State: "OUT_OF_MEMORY"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.p, tc.r, tc.cause, tc.restarts)
			reason := got.Reason
			got.Reason = ""
			if got != tc.want {
				t.Fatalf("Decide = %+v (reason %q), want %+v", got, reason, tc.want)
			}
			if !strings.Contains(reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", reason, tc.reason)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{Mode: ModeSignal, Warn: 5 * time.Minute, Interval: 30 * time.Minute}
	if at, ok := p.WarnAt(start, time.Hour); !ok || !at.Equal(start.Add(55*time.Minute)) {
		t.Fatalf("WarnAt = %v %v", at, ok)
	}
	if _, ok := p.WarnAt(start, 5*time.Minute); ok {
		t.Fatal("a warning as long as the walltime must not be sent")
	}
	if _, ok := (Policy{Requeue: true, Warn: time.Minute}).WarnAt(start, time.Hour); ok {
		t.Fatal("a job without checkpoint block is never warned")
	}
	if at, ok := p.NextPeriodic(start, time.Time{}); !ok || !at.Equal(start.Add(30*time.Minute)) {
		t.Fatalf("first periodic = %v %v", at, ok)
	}
	if at, _ := p.NextPeriodic(start, start.Add(40*time.Minute)); !at.Equal(start.Add(70 * time.Minute)) {
		t.Fatalf("periodic after a checkpoint = %v", at)
	}
	if _, ok := (Policy{Mode: ModeSignal}).NextPeriodic(start, time.Time{}); ok {
		t.Fatal("no interval, no periodic checkpoint")
	}
}
