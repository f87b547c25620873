package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/checkpoint"
)

type ckptCall struct {
	id  uint64
	req api.CheckpointRequest
}

func (f *fakeAgent) Checkpoint(id uint64, req api.CheckpointRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ckpts = append(f.ckpts, ckptCall{id, req})
	return nil
}

func (f *fakeAgent) checkpoints() []ckptCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ckpts)
}

// started returns the start time of a running job.
func (h *harness) started(id uint64) time.Time {
	h.t.Helper()
	j := h.job(id)
	if j.Start == nil {
		h.t.Fatalf("job %d has not started", id)
	}
	return *j.Start
}

const ckptJob = `  walltime = "1h"
  checkpoint {
    warn = "5m"
    max_restarts = 2
  }`

// The warning goes out warn before the walltime; from then on the job is
// CHECKPOINTING, and whatever its exit it is requeued with restart + 1,
// keeping its submit time (age) and its id; the run is recorded.
func TestWalltimeWarningRequeues(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(ckptJob))[0]
	h.schedule()
	start := h.started(id)
	submit := h.job(id).Submit

	h.srv.checkpointPass(start.Add(54 * time.Minute))
	if len(h.agent.checkpoints()) != 0 || h.state(id) != api.StateRunning {
		t.Fatalf("warned too early: %v, %s", h.agent.checkpoints(), h.state(id))
	}
	h.srv.checkpointPass(start.Add(55 * time.Minute))
	calls := h.agent.checkpoints()
	if len(calls) != 1 || calls[0].id != id || !calls[0].req.Stop || calls[0].req.Signal != "SIGUSR1" || calls[0].req.Mode != "signal" {
		t.Fatalf("checkpoint requests %+v, want one stop request with SIGUSR1", calls)
	}
	if j := h.storedJob(id); j.State != api.StateCheckpointing || j.StopCause != string(checkpoint.CauseWalltime) {
		t.Fatalf("stored state %s cause %q, want CHECKPOINTING for walltime (durable before the signal)", j.State, j.StopCause)
	}
	h.srv.checkpointPass(start.Add(56 * time.Minute))
	if n := len(h.agent.checkpoints()); n != 1 {
		t.Fatalf("warned %d times, want once", n)
	}

	h.report(id, api.StateCompleted, 0) // saved and exited 0 on the warning
	j := h.storedJob(id)
	// (The warning's time is the test's future clock, so only the order of
	// states is checked here.)
	if got, want := states(j.History), []api.JobState{api.StatePending, api.StateRunning, api.StateCheckpointing, api.StateRequeued, api.StatePending}; !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if j.Restarts != 1 || !j.Submit.Equal(submit) || j.StopCause != "" {
		t.Fatalf("restarts %d submit %v (was %v) cause %q", j.Restarts, j.Submit, submit, j.StopCause)
	}
	if len(j.Runs) != 1 || j.Runs[0].Stop != "walltime" || j.Runs[0].State != api.StateRequeued || j.Runs[0].Checkpoints != 1 || j.Runs[0].LastCheckpoint == nil {
		t.Fatalf("runs %+v", j.Runs)
	}
	if j.Checkpoints != 0 || j.LastCheckpoint != nil {
		t.Fatalf("the next run starts with the checkpoints of the last: %d %v", j.Checkpoints, j.LastCheckpoint)
	}
	// The next run gets its own walltime and restart count.
	h.schedule()
	if h.state(id) != api.StateRunning {
		t.Fatalf("requeued job is %s", h.state(id))
	}
	a := h.agent.launched[len(h.agent.launched)-1]
	if a.RestartCount != 1 || a.JobID != id || a.CheckpointDir == "" {
		t.Fatalf("second launch %+v", a)
	}
	if got := h.job(id).Runs; len(got) != 1 {
		t.Fatalf("runs after restart %+v", got)
	}
}

// A job that keeps being stopped at its walltime ends after max_restarts
// with TIMEOUT: its work is not done.
func TestMaxRestartsEndsTheJob(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(ckptJob))[0]
	for run := 0; run < 3; run++ {
		h.schedule()
		start := h.started(id)
		h.srv.checkpointPass(start.Add(time.Hour - time.Minute))
		h.report(id, api.StateCompleted, 0)
	}
	j := h.storedJob(id)
	if j.State != api.StateTimeout || j.Restarts != 2 || len(j.Runs) != 3 {
		t.Fatalf("state %s restarts %d runs %d, want TIMEOUT after 2 restarts and 3 runs", j.State, j.Restarts, len(j.Runs))
	}
	if !strings.Contains(j.Reason, "max_restarts = 2") {
		t.Fatalf("reason %q does not name max_restarts", j.Reason)
	}
}

// Periodic checkpoints: every interval, the job keeps running.
func TestPeriodicCheckpoints(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  walltime = \"1h\"\n  checkpoint {\n    interval = \"10m\"\n  }"))[0]
	h.schedule()
	start := h.started(id)
	for _, m := range []int{5, 10, 15, 20, 21} {
		h.srv.checkpointPass(start.Add(time.Duration(m) * time.Minute))
	}
	calls := h.agent.checkpoints()
	if len(calls) != 2 || calls[0].req.Stop || calls[1].req.Stop {
		t.Fatalf("calls %+v, want 2 periodic (non-stop) requests at 10m and 20m", calls)
	}
	if j := h.job(id); j.State != api.StateRunning || j.Checkpoints != 2 {
		t.Fatalf("state %s checkpoints %d", j.State, j.Checkpoints)
	}
}

// Drain with requeue warns checkpointing jobs, stops them once the warn
// time is over, and requeues them whatever they exit with; jobs that may
// not be requeued keep running.
func TestDrainRequeueWarnsFirst(t *testing.T) {
	h := newHarness(t, testConfig())
	ck := h.submit(jobSrc(ckptJob))[0]
	plain := h.submit(jobSrc(""))[0]
	h.schedule()
	if _, err := h.client.Drain(t.Context(), "n1", api.DrainRequest{Reason: "maintenance", Requeue: true}); err != nil {
		t.Fatal(err)
	}
	if calls := h.agent.checkpoints(); len(calls) != 1 || calls[0].id != ck || !calls[0].req.Stop {
		t.Fatalf("checkpoint requests %+v", calls)
	}
	if len(h.agent.cancelled()) != 0 {
		t.Fatalf("killed %v before the warning time was over", h.agent.cancelled())
	}
	j := h.job(ck)
	if j.State != api.StateCheckpointing || j.StopDeadline == nil {
		t.Fatalf("state %s deadline %v", j.State, j.StopDeadline)
	}
	h.srv.checkpointPass(j.StopDeadline.Add(-time.Second))
	if len(h.agent.cancelled()) != 0 {
		t.Fatal("stopped before its grace was over")
	}
	h.srv.checkpointPass(*j.StopDeadline)
	if got := h.agent.cancelled(); !slices.Equal(got, []uint64{ck}) {
		t.Fatalf("cancelled %v, want %d after its grace", got, ck)
	}
	h.report(ck, api.StateCancelled, 137)
	if j := h.storedJob(ck); j.State != api.StatePending || j.Restarts != 1 || j.Runs[0].Stop != "drain" {
		t.Fatalf("state %s restarts %d runs %+v", j.State, j.Restarts, j.Runs)
	}
	if h.state(plain) != api.StateRunning {
		t.Fatalf("job that may not be requeued is %s", h.state(plain))
	}
}

// Exit codes declared retryable restart the job; others end it.
func TestRetryOnExit(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  checkpoint {\n    retry_on_exit = [75]\n  }"))[0]
	h.schedule()
	h.report(id, api.StateFailed, 75)
	if j := h.job(id); j.State != api.StatePending || j.Restarts != 1 {
		t.Fatalf("after exit 75: %s restarts %d", j.State, j.Restarts)
	}
	h.schedule()
	h.report(id, api.StateFailed, 74)
	if j := h.storedJob(id); j.State != api.StateFailed || j.Restarts != 1 || len(j.Runs) != 2 {
		t.Fatalf("after exit 74: %s restarts %d runs %d", j.State, j.Restarts, len(j.Runs))
	}
}

// A requeued job keeps its place: it starts before jobs submitted after it.
func TestRequeuedJobKeepsItsAge(t *testing.T) {
	h := newHarness(t, testConfig())
	// Each job takes the whole node (8 CPUs).
	big := "  resources {\n    cpus = 8\n  }\n" + ckptJob
	first := h.submit(jobSrc(big))[0]
	h.schedule()
	later := h.submit(jobSrc(big))[0]
	h.report(first, api.StateFailed, checkpoint.ExitRestart)
	h.schedule()
	if h.state(first) != api.StateRunning || h.state(later) != api.StatePending {
		t.Fatalf("requeued job %s, later job %s: the requeued job must go first", h.state(first), h.state(later))
	}
}

// A node lost without an outcome requeues its checkpointing jobs, with
// NODE_FAIL then REQUEUED in the history.
func TestLostNodeRequeues(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(ckptJob))[0]
	h.schedule()
	h.srv.endLost(id, "node n1 missed its heartbeats", time.Now())
	j := h.storedJob(id)
	checkHistory(t, j, api.StatePending, api.StateRunning, api.StateNodeFail, api.StateRequeued, api.StatePending)
	if j.Restarts != 1 || j.Runs[0].Stop != "node-fail" {
		t.Fatalf("restarts %d runs %+v", j.Restarts, j.Runs)
	}
}

// A pending job of higher priority preempts a preemptible checkpointing
// job: the victim is warned (CHECKPOINTING), stopped after its grace if it
// does not exit, requeued with its age, and the preemptor starts first.
func TestPreemptionRequeuesTheVictim(t *testing.T) {
	h := newHarness(t, testConfig())
	whole := "  resources {\n    cpus = 8\n  }\n"
	low := h.submit(jobSrc(whole + "  priority = 10\n  preemptible = true\n" + ckptJob))[0]
	keep := h.submit(jobSrc("  priority = 10\n  resources {\n    cpus = 8\n  }\n  preemptible = false\n" + ckptJob))[0]
	h.schedule()
	if h.state(low) != api.StateRunning || h.state(keep) != api.StatePending {
		t.Fatalf("low %s keep %s", h.state(low), h.state(keep))
	}
	high := h.submit(jobSrc(whole + "  priority = 500"))[0]
	h.schedule()
	calls := h.agent.checkpoints()
	if len(calls) != 1 || calls[0].id != low || !calls[0].req.Stop {
		t.Fatalf("checkpoint requests %+v, want a stop request to job %d", calls, low)
	}
	if j := h.storedJob(low); j.State != api.StateCheckpointing || j.StopCause != string(checkpoint.CausePreemption) {
		t.Fatalf("victim %s cause %q", j.State, j.StopCause)
	}
	if w := h.job(high); w.State != api.StatePending || w.waitReason != "Preempting" {
		t.Fatalf("preemptor %s waiting for %q", w.State, w.waitReason)
	}
	// The next pass preempts nothing more while the victim checkpoints.
	h.schedule()
	if n := len(h.agent.checkpoints()); n != 1 {
		t.Fatalf("%d checkpoint requests, want still 1", n)
	}
	h.report(low, api.StateCompleted, 0) // saved and exited on the warning
	if j := h.storedJob(low); j.State != api.StatePending || j.Restarts != 1 || j.Runs[0].Stop != "preemption" {
		t.Fatalf("victim %s restarts %d runs %+v", j.State, j.Restarts, j.Runs)
	}
	h.schedule()
	if h.state(high) != api.StateRunning || h.state(low) != api.StatePending {
		t.Fatalf("after the victim stopped: preemptor %s, victim %s", h.state(high), h.state(low))
	}
	// The preemptor ends: the victim, older than keep, runs again first.
	h.report(high, api.StateCompleted, 0)
	h.schedule()
	if h.state(low) != api.StateRunning || h.state(keep) != api.StatePending {
		t.Fatalf("victim %s, other %s: the requeued victim keeps its place", h.state(low), h.state(keep))
	}
}
