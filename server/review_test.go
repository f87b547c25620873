package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// A launch cut short before any of the job ran (the agent died before
// releasing the shim) puts the job back in the queue without using one
// of its restarts.
func TestNeverStartedGoesBackToTheQueue(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	h.srv.Report(api.Outcome{JobID: id, Node: h.reg.Name, State: api.StateFailed, ExitCode: 2,
		Reason: "the agent stopped before the job started", NeverStarted: true})
	j := h.job(id)
	if j.State != api.StatePending || j.Restarts != 0 {
		t.Fatalf("state %s restarts %d, want PENDING with 0 restarts", j.State, j.Restarts)
	}
	checkHistory(t, j, api.StatePending, api.StateRunning, api.StateRequeued, api.StatePending)
	h.schedule()
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("requeued job is %s after a pass, want RUNNING again", st)
	}
}

// A cancel that lands while the job is being launched (the agent has no
// process to kill yet) is sent again once the launch is done.
func TestCancelDuringLaunchIsNotLost(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.agent.onLaunch = func(a api.Assignment) {
		h.srv.mu.Lock()
		h.srv.jobs[a.JobID].CancelRequested = true
		h.srv.mu.Unlock()
	}
	h.srv.scheduleOnce(context.Background(), time.Now())
	h.srv.launches.Wait()
	if !slices.Contains(h.agent.cancelled(), id) {
		t.Fatalf("cancel requested during the launch was never sent to the agent (cancels %v)", h.agent.cancelled())
	}
}

// The environment is stored once per distinct content and still reaches
// the job after a restart.
func TestEnvironmentSurvivesRestart(t *testing.T) {
	h := newHarness(t, testConfig())
	req := h.submitReq(jobSrc(""))
	req.Env = map[string]string{"FOO": "bar", "PATH": "/usr/bin:/bin"}
	var ids []uint64
	for i := 0; i < 3; i++ {
		resp, err := h.client.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.IDs...)
	}
	blobs := 0
	h.st.Blobs(func(string, []byte) error { blobs++; return nil })
	if blobs != 1 {
		t.Fatalf("%d environment blobs stored for 3 submits of one environment, want 1", blobs)
	}
	h.restart(&fakeAgent{})
	h.schedule()
	found := false
	h.agent.mu.Lock()
	for _, a := range h.agent.launched {
		if a.JobID == ids[0] && slices.Contains(a.Env, "FOO=bar") {
			found = true
		}
	}
	h.agent.mu.Unlock()
	if !found {
		t.Fatal("after a restart the job was launched without its environment")
	}
}

func TestWrongMethodIs405(t *testing.T) {
	h := newHarness(t, testConfig())
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodDelete, "/v1/jobs", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/jobs/1/cancel", http.StatusMethodNotAllowed},
		{http.MethodPut, "/v1/nodes", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nope", http.StatusNotFound},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req = req.WithContext(context.WithValue(req.Context(), callerKey{}, Caller{}))
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s %s: %d, want %d (%s)", tt.method, tt.path, rec.Code, tt.want, rec.Body)
		}
	}
}

// A requeued job does not start again before the agent released its
// previous run (the agent would refuse a second launch of the same id).
func TestRequeuedJobWaitsForRelease(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  checkpoint {\n    max_restarts = 2\n  }"))[0]
	h.schedule()
	launchedDuringRelease := 0
	h.agent.onRelease = func(uint64) {
		before := len(h.agent.launchedIDs())
		h.schedule() // a pass that happens to run before the release is done
		launchedDuringRelease += len(h.agent.launchedIDs()) - before
	}
	h.report(id, api.StateFailed, 85)
	if launchedDuringRelease != 0 {
		t.Fatalf("job relaunched %d time(s) before its previous run was released", launchedDuringRelease)
	}
	h.agent.onRelease = nil
	h.schedule()
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("after the release the requeued job is %s, want RUNNING", st)
	}
}
