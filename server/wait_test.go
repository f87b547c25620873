package server

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// The long-poll wait answers when the job ends, not on earlier changes.
func TestWaitReturnsWhenJobEnds(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  checkpoint {\n    max_restarts = 1\n  }"))[0]
	h.schedule()
	entered := make(chan string, 1)
	h.entered.Store(entered)
	go func() {
		<-entered // the wait request reached the server
		// Requeued first: a change, not the end.
		h.report(id, api.StateFailed, 85)
		h.schedule()
		h.report(id, api.StateCompleted, 0)
	}()
	j, err := h.client.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != api.StateCompleted || j.ExitCode == nil || *j.ExitCode != 0 || j.Restarts != 1 {
		t.Errorf("wait answered %s exit %v restarts %d, want COMPLETED 0 after one restart", j.State, j.ExitCode, j.Restarts)
	}
}

func TestWaitTimeoutAnswersLiveJob(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	for _, timeout := range []string{"0s", "20ms"} {
		status, body := h.as(0, "GET", fmt.Sprintf("/v1/jobs/%d/wait?timeout=%s", id, timeout), nil)
		if status != 200 {
			t.Errorf("wait timeout=%s: %d %s", timeout, status, body)
		}
	}
}

// Cancelling a running job asks its agent to kill it and answers with the end state.
func TestCancelRunning(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	h.agent.onCancel = func(id uint64) { h.report(id, api.StateCancelled, 137) }
	j, err := h.client.Cancel(context.Background(), id)
	if err != nil || j.State != api.StateCancelled {
		t.Fatalf("cancel: %v, state %s", err, j.State)
	}
	if got := h.agent.cancelled(); !slices.Equal(got, []uint64{id}) {
		t.Errorf("agent cancels %v", got)
	}
	checkHistory(t, h.storedJob(id), api.StatePending, api.StateRunning, api.StateCancelled)
}

// A running job that exits 0 once a cancel was asked for (it trapped the
// SIGTERM and ended cleanly) is CANCELLED, as in Slurm: the cancel is why
// it ended. Its exit code stays on record.
func TestCancelRequestedButCompleted(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	h.agent.onCancel = func(id uint64) { h.report(id, api.StateCompleted, 0) }
	j, err := h.client.Cancel(context.Background(), id)
	if err != nil || j.State != api.StateCancelled || j.ExitCode == nil || *j.ExitCode != 0 {
		t.Fatalf("cancel: %v, state %s, exit %v; want CANCELLED with exit code 0", err, j.State, j.ExitCode)
	}
}

func TestDrainAndResume(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	running := h.submit(jobSrc(""))[0]
	h.schedule()
	n, err := h.client.Drain(ctx, "n1", api.DrainRequest{Reason: "swap HBM"})
	if err != nil || n.State != "DRAINING" || n.Reason != "swap HBM" {
		t.Fatalf("drain: %v %+v", err, n)
	}
	queued := h.submit(jobSrc(""))[0] // a draining node still counts for feasibility
	h.schedule()
	if st := h.state(queued); st != api.StatePending {
		t.Errorf("job started on a draining node: %s", st)
	}
	h.report(running, api.StateCompleted, 0)
	if nodes, _ := h.client.Nodes(ctx); len(nodes) != 1 || nodes[0].State != "DRAINED" {
		t.Errorf("nodes after the last job ended: %+v", nodes)
	}
	if n, err := h.client.Resume(ctx, "n1"); err != nil || n.State != "IDLE" {
		t.Fatalf("resume: %v %+v", err, n)
	}
	h.schedule()
	if st := h.state(queued); st != api.StateRunning {
		t.Errorf("job is %s after resume", st)
	}
}

// Drain with requeue stops requeue-able jobs and puts them back in the queue.
func TestDrainRequeue(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	rq := h.submit(jobSrc("  requeue = true"))[0]
	keep := h.submit(jobSrc(""))[0]
	h.schedule()
	if _, err := h.client.Drain(ctx, "n1", api.DrainRequest{Reason: "maintenance", Requeue: true}); err != nil {
		t.Fatal(err)
	}
	if got := h.agent.cancelled(); !slices.Equal(got, []uint64{rq}) {
		t.Fatalf("drain stopped %v, want only the requeue-able job %d", got, rq)
	}
	h.report(rq, api.StateCancelled, 143)
	j := h.storedJob(rq)
	checkHistory(t, j, api.StatePending, api.StateRunning, api.StateRequeued, api.StatePending)
	if j.Restarts != 1 || j.RequeueRequested {
		t.Errorf("restarts %d requeue requested %v", j.Restarts, j.RequeueRequested)
	}
	if st := h.state(keep); st != api.StateRunning {
		t.Errorf("job without requeue is %s", st)
	}
}

// A user's cancel wins over a drain's requeue: the job ends CANCELLED
// instead of going back to the queue.
func TestCancelDuringDrainRequeue(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	id := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	if _, err := h.client.Drain(ctx, "n1", api.DrainRequest{Reason: "maintenance", Requeue: true}); err != nil {
		t.Fatal(err)
	}
	h.agent.onCancel = func(id uint64) { h.report(id, api.StateCancelled, 143) }
	j, err := h.client.Cancel(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != api.StateCancelled {
		t.Errorf("cancel during a drain with requeue left the job %s (history %v)", j.State, states(j.History))
	}
}
