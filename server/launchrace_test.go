package server

import (
	"context"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// TestRegisterDuringLaunchRunsTheJobOnce: an agent (re)registers while a
// job it is about to be given is committed RUNNING but its launch is not
// yet handed over. The registration must not take that job for lost: the
// launch is still coming, and requeueing it as well ran it twice (found
// with kill -9 of hpcd server and agents during a stream of submits: one
// job in ~150 wrote its output twice, its history RUNNING, REQUEUED "never
// started", RUNNING, COMPLETED).
func TestRegisterDuringLaunchRunsTheJobOnce(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	registered := false
	h.agent.onLaunch = func(a api.Assignment) {
		if registered {
			return
		}
		registered = true
		// The agent comes back (a new session) holding nothing: the launch
		// has not reached it yet.
		req := api.RegisterRequest{Protocol: api.ProtocolVersion, Node: h.reg, Held: []uint64{}}
		if _, err := h.srv.AgentRegister(context.Background(), AgentIdentity{Node: h.reg.Name}, req); err != nil {
			t.Errorf("register: %v", err)
		}
	}
	// The launch goroutine's window, made wide: register between the
	// commit of RUNNING and the hand-over.
	h.srv.mu.Lock()
	h.srv.agents[h.reg.Name] = h.agent
	h.srv.mu.Unlock()
	h.schedule()
	j := h.job(id)
	for _, tr := range j.History {
		if tr.State == api.StateRequeued {
			t.Fatalf("job %d was requeued while its launch was in flight (%s): it would run twice; history %+v", id, tr.Reason, j.History)
		}
	}
	if j.State != api.StateRunning {
		t.Errorf("job %d is %s, want RUNNING (launched once)", id, j.State)
	}
}

// TestRegisterAfterLaunchToNewSessionRunsTheJobOnce: a job is scheduled on
// a node while its agent registers, after the new session is installed and
// before the registration reconciles the node's jobs. Its launch is then in
// the new session's queue; taking the job for lost as well requeued it
// ("never started") while the launch still reached the agent, and the job
// ran on two nodes (kill -9 of agents during a stream of submits, about
// one job in 500).
func TestRegisterAfterLaunchToNewSessionRunsTheJobOnce(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	req := api.RegisterRequest{Protocol: api.ProtocolVersion, Node: h.reg, Held: []uint64{}}
	if _, err := h.srv.AgentRegister(ctx, AgentIdentity{Node: h.reg.Name}, req); err != nil {
		t.Fatalf("first register: %v", err)
	}
	var id uint64
	h.srv.registerInstalled = func(string) {
		h.srv.registerInstalled = nil
		id = h.submit(jobSrc(""))[0]
		h.schedule() // the launch goes to the session just installed
	}
	// The agent restarts (kill -9) and registers again, holding nothing.
	if _, err := h.srv.AgentRegister(ctx, AgentIdentity{Node: h.reg.Name}, req); err != nil {
		t.Fatalf("second register: %v", err)
	}
	if id == 0 {
		t.Fatal("the hook did not run")
	}
	j := h.job(id)
	for _, tr := range j.History {
		if tr.State == api.StateRequeued {
			t.Fatalf("job %d was requeued (%s) while its launch waits in the new session: it would run twice; history %+v", id, tr.Reason, j.History)
		}
	}
	if j.State != api.StateRunning {
		t.Fatalf("job %d is %s, want RUNNING", id, j.State)
	}
	h.srv.mu.Lock()
	sess := h.srv.nodes[h.reg.Name].session
	h.srv.mu.Unlock()
	launches := 0
	for _, c := range sess.unacked() {
		if c.Kind == api.CommandLaunch && c.JobID == id {
			launches++
			if c.Launch.Attempt != j.Attempt {
				t.Errorf("queued launch of attempt %d, the job's is %d", c.Launch.Attempt, j.Attempt)
			}
		}
	}
	if launches != 1 {
		t.Errorf("%d launches of job %d queued for the agent, want exactly 1", launches, id)
	}
}

// TestRegisterResendsOnlyTheCurrentAttempt: of the launches an old session
// never had acknowledged, only the job's current attempt is sent again; a
// launch of an earlier run left in the queue is dropped.
func TestRegisterResendsOnlyTheCurrentAttempt(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	req := api.RegisterRequest{Protocol: api.ProtocolVersion, Node: h.reg, Held: []uint64{}}
	if _, err := h.srv.AgentRegister(ctx, AgentIdentity{Node: h.reg.Name}, req); err != nil {
		t.Fatalf("first register: %v", err)
	}
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	j := h.job(id)
	h.srv.mu.Lock()
	old := h.srv.nodes[h.reg.Name].session
	h.srv.mu.Unlock()
	// An earlier run's launch, never acknowledged, still in the old queue.
	stale := j.assignment(j.Alloc[0])
	stale.Attempt = j.Attempt - 1
	if err := old.Launch(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.AgentRegister(ctx, AgentIdentity{Node: h.reg.Name}, req); err != nil {
		t.Fatalf("second register: %v", err)
	}
	h.srv.mu.Lock()
	sess := h.srv.nodes[h.reg.Name].session
	h.srv.mu.Unlock()
	var attempts []uint64
	for _, c := range sess.unacked() {
		if c.Kind == api.CommandLaunch {
			attempts = append(attempts, c.Launch.Attempt)
		}
	}
	if len(attempts) != 1 || attempts[0] != j.Attempt {
		t.Errorf("resent launches of attempts %v, want only the current %d", attempts, j.Attempt)
	}
	if st := h.state(id); st != api.StateRunning {
		t.Errorf("job %d is %s, want RUNNING", id, st)
	}
}

// TestOutcomeOfEarlierAttemptChangesNothing: an outcome that names an
// attempt other than the job's current one is ignored, whatever its state.
func TestOutcomeOfEarlierAttemptChangesNothing(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	j := h.job(id)
	h.srv.Report(api.Outcome{JobID: id, Node: h.reg.Name, State: api.StateCompleted, Attempt: j.Attempt - 1, End: time.Now()})
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("job %d is %s after an earlier run's outcome, want RUNNING", id, st)
	}
	h.srv.Report(api.Outcome{JobID: id, Node: h.reg.Name, State: api.StateCompleted, Attempt: j.Attempt, End: time.Now()})
	if st := h.state(id); st != api.StateCompleted {
		t.Fatalf("job %d is %s after its current run's outcome, want COMPLETED", id, st)
	}
}
