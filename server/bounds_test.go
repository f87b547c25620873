package server

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// Found as: a umask of 0xFFFFFFFF was accepted and masked to 0777, so the
// job's output was created with mode 000. It is refused at the API edge.
func TestSubmitUmaskBounded(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, tc := range []struct {
		umask  uint32
		status int
	}{
		{0xFFFFFFFF, 400},
		{0o1000, 400},
		{0o777, 201},
		{0o022, 201},
	} {
		req := h.submitReq(jobSrc(""))
		m := tc.umask
		req.Umask = &m
		status, body := h.as(nobody, "POST", "/v1/jobs", mustJSON(t, req))
		if status != tc.status {
			t.Errorf("umask %#o: HTTP %d %s, want %d", tc.umask, status, body, tc.status)
		}
		if status == 400 && !strings.Contains(string(body), "at most 0777") {
			t.Errorf("umask %#o: refusal %s does not say the bound", tc.umask, body)
		}
	}
	if n := h.jobCount(); n != 2 {
		t.Fatalf("%d jobs, want 2 (refused submits create nothing)", n)
	}
}

// Found as: 50,000 targets in one POST /v1/job-actions took 32 s and
// answered 77 MB. Targets and the ranges they expand to are bounded with a
// 413 that says the limit and what to do, and the answer lists at most
// maxResultJobs jobs in full, counting the rest by state.
func TestJobActionsBounded(t *testing.T) {
	h := newHarness(t, testConfig())
	targets := make([]string, maxTargets+1)
	for i := range targets {
		targets[i] = strconv.Itoa(i + 1)
	}
	ranges := []string{"1_[0-99999]", "2_[0-1]"}
	for _, tc := range []struct {
		name    string
		targets []string
		want    string
	}{
		{"targets", targets, "at most 1000 in one request"},
		{"ranges", ranges, "more than 100000 array elements"},
	} {
		req := api.ActionRequest{Action: api.ActionCancel, Targets: tc.targets}
		status, body := h.as(nobody, "POST", api.RouteJobActions, mustJSON(t, req))
		if status != 413 || !strings.Contains(string(body), tc.want) || !strings.Contains(string(body), "split the request") {
			t.Errorf("%s: HTTP %d %.200s, want 413 saying %q and what to do", tc.name, status, body, tc.want)
		}
	}

	n := maxResultJobs + 5
	sub, err := h.srv.Submit(Caller{UID: nobody, GID: nobody}, h.submitReq(jobSrc(fmt.Sprintf("  array {\n    count = %d\n  }", n))))
	if err != nil {
		t.Fatal(err)
	}
	req := api.ActionRequest{Action: api.ActionHold, Targets: []string{strconv.FormatUint(sub.IDs[0], 10)}}
	status, body := h.as(nobody, "POST", api.RouteJobActions, mustJSON(t, req))
	var resp api.ActionResponse
	if err := json.Unmarshal(body, &resp); status != 200 || err != nil || len(resp.Results) != 1 {
		t.Fatalf("hold of a %d-element array: HTTP %d %v %.200s", n, status, err, body)
	}
	r := resp.Results[0]
	if len(r.Jobs) != maxResultJobs || r.More[api.StateHeld] != 5 || r.Error != "" {
		t.Fatalf("answer lists %d jobs and counts %v (error %q), want %d listed and 5 HELD counted", len(r.Jobs), r.More, r.Error, maxResultJobs)
	}
	held := 0
	for _, j := range h.listAll(t) {
		if j.State == api.StateHeld {
			held++
		}
	}
	if held != n {
		t.Fatalf("%d jobs held, want %d (the compact answer changes only what is shown)", held, n)
	}
}
