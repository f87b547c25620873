package server

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// actions posts an action request as uid and decodes the answer.
func (h *harness) actions(uid uint32, req api.ActionRequest) (int, api.ActionResponse) {
	h.t.Helper()
	status, body := h.as(uid, "POST", api.RouteJobActions, mustJSON(h.t, req))
	var resp api.ActionResponse
	if status == 200 {
		if err := json.Unmarshal(body, &resp); err != nil {
			h.t.Fatalf("action answer %s: %v", body, err)
		}
	}
	return status, resp
}

func TestArrayTargets(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  array {\n    indices = \"1-9:2\"\n  }"))
	a := ids[0]
	label := func(s string) string { return strings.ReplaceAll(s, "A", itoa(a)) }
	cases := []struct {
		name    string
		uid     uint32
		req     api.ActionRequest
		errs    []string // per target, "" for none
		changed int
		state   map[int]api.JobState // index -> state afterwards
	}{
		{"others may not", nobody, api.ActionRequest{Action: "hold", Targets: []string{label("A")}},
			[]string{"belongs to another user (root)"}, 0, map[int]api.JobState{1: api.StatePending}},
		{"hold a range", 0, api.ActionRequest{Action: "hold", Targets: []string{label("A_[3-7]")}},
			[]string{""}, 3, map[int]api.JobState{1: api.StatePending, 3: api.StateHeld, 7: api.StateHeld, 9: api.StatePending}},
		{"release one element", 0, api.ActionRequest{Action: "release", Targets: []string{label("A_5")}},
			[]string{""}, 1, map[int]api.JobState{5: api.StatePending}},
		{"one element in the wrong state", 0, api.ActionRequest{Action: "release", Targets: []string{label("A_9")}},
			[]string{"is PENDING, not HELD"}, 0, nil},
		{"the array skips what does not apply", 0, api.ActionRequest{Action: "hold", Targets: []string{label("A")}},
			[]string{""}, 3, map[int]api.JobState{1: api.StateHeld, 9: api.StateHeld}},
		{"raising is for admins", nobody, api.ActionRequest{Action: "update", Targets: []string{label("A_1")}, Priority: intp(900)},
			[]string{"belongs to another user"}, 0, nil},
		{"no such element", 0, api.ActionRequest{Action: "cancel", Targets: []string{label("A_4"), "99999"}},
			[]string{"no live element 4", "no job 99999"}, 0, nil},
		{"cancel by state", 0, api.ActionRequest{Action: "cancel", User: "root", States: []string{"HELD"}},
			[]string{""}, 5, map[int]api.JobState{1: api.StateCancelled, 9: api.StateCancelled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := h.actions(tc.uid, tc.req)
			if status != 200 || len(resp.Results) != len(tc.errs) {
				t.Fatalf("status %d, %+v", status, resp)
			}
			changed := 0
			for i, r := range resp.Results {
				if (tc.errs[i] == "") != (r.Error == "") || !strings.Contains(r.Error, tc.errs[i]) {
					t.Errorf("target %s: error %q, want %q", r.Target, r.Error, tc.errs[i])
				}
				changed += len(r.Jobs)
			}
			if changed != tc.changed {
				t.Errorf("%d jobs acted on, want %d", changed, tc.changed)
			}
			for idx, want := range tc.state {
				if got := h.state(a + uint64(idx/2)); got != want {
					t.Errorf("element %d is %s, want %s", idx, got, want)
				}
			}
		})
	}
	for _, bad := range []api.ActionRequest{
		{Action: "explode", Targets: []string{"1"}},
		{Action: "signal", Targets: []string{"1"}, Signal: "KILL"},
		{Action: "cancel", States: []string{"SLEEPING"}, User: "root"},
		{Action: "cancel"},
		{Action: "update", Targets: []string{"1"}},
	} {
		if status, _ := h.actions(0, bad); status != 400 {
			t.Errorf("%+v: status %d, want 400", bad, status)
		}
	}
	if status, _ := h.actions(nobody, api.ActionRequest{Action: "cancel", User: "root"}); status != 403 {
		t.Errorf("cancel --user root as nobody: status %d, want 403", status)
	}
}

func TestDependencyStates(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.submit(jobSrc(""))[0]
	submitDep := func(dep string) uint64 {
		req := h.submitReq(jobSrc(""))
		req.Dependencies = []string{dep}
		resp, err := h.client.Submit(context.Background(), req)
		if err != nil {
			t.Fatalf("submit with %s: %v", dep, err)
		}
		return resp.IDs[0]
	}
	after := submitDep("after:" + itoa(first))
	ok := submitDep("afterok:" + itoa(first))
	notok := submitDep("afternotok:" + itoa(first))
	anyID := submitDep("afterany:t") // by name: the latest live job named t, notok
	h.schedule()                     // first starts
	h.schedule()                     // after sees it started
	if h.state(first) != api.StateRunning || h.state(after) != api.StateRunning {
		t.Fatalf("first %s, after %s; want both RUNNING (after waits for the start only)", h.state(first), h.state(after))
	}
	if j := h.srv.apiJob(ok); j.State != api.StatePending || j.Reason != "Dependency (afterok:"+itoa(first)+")" {
		t.Errorf("afterok job: %s %q", j.State, j.Reason)
	}
	h.report(first, api.StateFailed, 3)
	h.schedule()
	if j := h.srv.apiJob(ok); j.State != api.StateCancelled || !strings.HasPrefix(j.Reason, "DependencyNeverSatisfied (afterok:") {
		t.Errorf("afterok of a failed job: %s %q", j.State, j.Reason)
	}
	if s := h.state(notok); s != api.StateRunning {
		t.Errorf("afternotok of a failed job is %s, want RUNNING", s)
	}
	if j := h.srv.apiJob(anyID); len(j.DependsOn) != 1 || j.DependsOn[0] != "afterany:"+itoa(notok) {
		t.Errorf("afterany by name: depends_on %v", j.DependsOn)
	}
	// Depending on another user's job, or on none, is refused.
	req := h.submitReq(jobSrc(""))
	req.Dependencies = []string{"afterok:" + itoa(first)}
	if _, err := h.srv.Submit(Caller{UID: nobody, GID: nobody}, req); apiStatusOf(err) != 403 {
		t.Errorf("dependency on another user's job: %v", err)
	}
	req.Dependencies = []string{"afterok:424242"}
	if _, err := h.srv.Submit(Caller{UID: 0}, req); apiStatusOf(err) != 400 {
		t.Errorf("dependency on no job: %v", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func intp(n int) *int { return &n }

// apiStatusOf is the HTTP status a server error maps to.
func apiStatusOf(err error) int {
	if err == nil {
		return 0
	}
	return statusOf(err)
}
