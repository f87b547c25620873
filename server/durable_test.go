package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// A new server on the same store has the same jobs, states and history,
// and its ids continue where the old one stopped.
func TestRestartKeepsEverything(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	done := h.submit(jobSrc(""))[0]
	h.schedule()
	h.report(done, api.StateCompleted, 0)
	cancelled := h.submit(jobSrc(""))[0]
	if _, err := h.client.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	held := h.submit(jobSrc(""))[0]
	if _, err := h.client.Hold(ctx, held); err != nil {
		t.Fatal(err)
	}
	array := h.submit(jobSrc("  resources {\n    cpus = 8\n  }\n  array {\n    count = 3\n  }"))
	h.schedule() // first array task takes the whole node, the others wait
	before := map[uint64]job{}
	var ids []uint64
	h.srv.mu.Lock()
	for id, j := range h.srv.jobs {
		before[id] = *j
		ids = append(ids, id)
	}
	h.srv.mu.Unlock()
	if len(ids) != 6 {
		t.Fatalf("%d jobs before the restart, want 6", len(ids))
	}

	h.restart(&fakeAgent{})
	if n := h.jobCount(); n != len(before) {
		t.Fatalf("%d jobs after restart, want %d", n, len(before))
	}
	for id, b := range before {
		a := h.job(id)
		if a.State != b.State || a.Restarts != b.Restarts || a.ArrayJobID != b.ArrayJobID || a.ArrayIndex != b.ArrayIndex ||
			len(a.History) != len(b.History) || !slices.Equal(a.nodeNames(), b.nodeNames()) {
			t.Errorf("job %d: after restart %s %v, before %s %v", id, a.State, states(a.History), b.State, states(b.History))
			continue
		}
		for i := range a.History {
			x, y := a.History[i], b.History[i]
			if !x.Time.Equal(y.Time) || x.State != y.State || x.Reason != y.Reason {
				t.Errorf("job %d transition %d: %+v, was %+v", id, i, x, y)
			}
		}
	}
	if got := h.agent.reconciled; len(got) != 1 || !slices.Equal(got[0], []uint64{array[0]}) {
		t.Errorf("agent reconciled %v, want [[%d]]", got, array[0])
	}
	if st := h.state(array[0]); st != api.StateRunning {
		t.Errorf("adopted job is %s", st)
	}
	next := h.submit(jobSrc(""))
	if want := array[len(array)-1] + 1; next[0] != want {
		t.Errorf("first id after restart %d, want %d", next[0], want)
	}
	// The restored queue schedules: the adopted task still holds the node.
	h.schedule()
	if st := h.state(array[1]); st != api.StatePending {
		t.Errorf("second array task is %s while the first holds every CPU", st)
	}
	h.report(array[0], api.StateCompleted, 0)
	h.schedule()
	if st := h.state(array[1]); st != api.StateRunning {
		t.Errorf("second array task is %s after the first ended", st)
	}
}

// Jobs that were RUNNING and whose processes the agent no longer has end
// NODE_FAIL, or go back to the queue when they may be requeued.
func TestRestartReconcilesLostJobs(t *testing.T) {
	h := newHarness(t, testConfig())
	plain := h.submit(jobSrc(""))[0]
	requeue := h.submit(jobSrc("  requeue = true"))[0]
	adopted := h.submit(jobSrc(""))[0]
	h.schedule()
	for _, id := range []uint64{plain, requeue, adopted} {
		if st := h.state(id); st != api.StateRunning {
			t.Fatalf("job %d is %s before the restart", id, st)
		}
	}
	h.restart(&fakeAgent{lost: map[uint64]bool{plain: true, requeue: true}})
	p := h.storedJob(plain)
	checkHistory(t, p, api.StatePending, api.StateRunning, api.StateNodeFail)
	if !strings.Contains(p.Reason, "after a restart") || p.End == nil {
		t.Errorf("lost job: reason %q end %v", p.Reason, p.End)
	}
	r := h.storedJob(requeue)
	checkHistory(t, r, api.StatePending, api.StateRunning, api.StateNodeFail, api.StateRequeued, api.StatePending)
	if r.Restarts != 1 || r.Alloc != nil {
		t.Errorf("requeued job: restarts %d alloc %v", r.Restarts, r.Alloc)
	}
	if st := h.state(adopted); st != api.StateRunning {
		t.Errorf("adopted job is %s", st)
	}
	h.schedule()
	if st := h.state(requeue); st != api.StateRunning {
		t.Errorf("requeued job is %s after a pass", st)
	}
	if got := h.agent.launchedIDs(); !slices.Equal(got, []uint64{requeue}) {
		t.Errorf("launched %v after restart, want only the requeued job %d", got, requeue)
	}
}

// A cancel acknowledged while the node's agent was away is sent again when
// it attaches after a restart.
func TestCancelResentAfterRestart(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	h.restart(nil) // the node is known but its agent is not attached
	j, err := h.client.Cancel(context.Background(), id)
	if err != nil || j.State != api.StateRunning {
		t.Fatalf("cancel with the agent away: %v, state %s", err, j.State)
	}
	if !h.storedJob(id).CancelRequested {
		t.Fatal("cancel request not stored")
	}
	a := &fakeAgent{}
	h.restart(a)
	if got := a.cancelled(); !slices.Equal(got, []uint64{id}) {
		t.Fatalf("cancels sent at attach: %v, want [%d]", got, id)
	}
	h.report(id, api.StateCancelled, 137)
	checkHistory(t, h.storedJob(id), api.StatePending, api.StateRunning, api.StateCancelled)
}

// A cancel-requested job that is lost at reconcile ends CANCELLED, not NODE_FAIL.
func TestCancelRequestedLostJob(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	h.restart(nil)
	if _, err := h.client.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	h.restart(&fakeAgent{lost: map[uint64]bool{id: true}})
	j := h.storedJob(id)
	checkHistory(t, j, api.StatePending, api.StateRunning, api.StateCancelled)
}

// Concurrent submits share store commits; every one gets its own ids and
// each array stays consecutive.
func TestConcurrentSubmits(t *testing.T) {
	h := newHarness(t, testConfig())
	const n = 16
	results := make(chan []uint64, n)
	for i := 0; i < n; i++ {
		go func() {
			resp, err := h.client.Submit(context.Background(), h.submitReq(jobSrc("  array {\n    count = 3\n  }")))
			if err != nil {
				t.Error(err)
			}
			results <- resp.IDs
		}()
	}
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		ids := <-results
		for k, id := range ids {
			if seen[id] || id != ids[0]+uint64(k) {
				t.Errorf("ids %v: duplicate or not consecutive", ids)
			}
			seen[id] = true
			if j := h.storedJob(id); j.ArrayJobID != ids[0] || j.ArrayIndex != k {
				t.Errorf("job %d stored as task %d of %d", id, j.ArrayIndex, j.ArrayJobID)
			}
		}
	}
	if len(seen) != 3*n || h.jobCount() != 3*n {
		t.Errorf("%d distinct ids, %d jobs, want %d", len(seen), h.jobCount(), 3*n)
	}
}
