package server

import (
	"context"
	"testing"

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
