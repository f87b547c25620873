package server

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// TestJobCountsMatchTheList: view=counts counts, per state, the jobs the
// list with the same filters shows.
func TestJobCountsMatchTheList(t *testing.T) {
	h := newHarness(t, testConfig())
	h.submit(jobSrc("  resources { cpus = 8 }"))                        // runs: takes the whole node
	h.submit(jobSrc("  resources { cpus = 8 }\n  array { count = 3 }")) // waits
	h.schedule()
	for _, query := range []string{"", "state=PENDING", "state=RUNNING,HELD", "user=nobody-here", "state=COMPLETED"} {
		code, body := h.as(0, http.MethodGet, "/v1/jobs?"+query, nil)
		if code != http.StatusOK {
			t.Fatalf("GET ?%s: %d %s", query, code, body)
		}
		var list []api.Job
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		want := map[api.JobState]int{}
		for _, j := range list {
			want[j.State]++
		}
		code, body = h.as(0, http.MethodGet, "/v1/jobs?view=counts&"+query, nil)
		if code != http.StatusOK {
			t.Fatalf("GET ?view=counts&%s: %d %s", query, code, body)
		}
		var got api.JobCounts
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Counts, want) {
			t.Errorf("?%s: counts %v, the list has %v", query, got.Counts, want)
		}
	}
	code, body := h.as(0, http.MethodGet, "/v1/jobs?view=counts", nil)
	var all api.JobCounts
	if code != http.StatusOK || json.Unmarshal(body, &all) != nil || all.Counts[api.StateRunning] != 1 || all.Counts[api.StatePending] != 3 {
		t.Errorf("all jobs: %d %s, want 1 RUNNING and 3 PENDING", code, body)
	}
}

// TestStateCountsFollowEveryRecord: the kept counts equal a walk of the
// live jobs after submits (one held), starts, an outcome, a cancel, the
// archive sweep and a restart that loads the store.
func TestStateCountsFollowEveryRecord(t *testing.T) {
	h := newHarness(t, testConfig())
	check := func(step string) {
		t.Helper()
		s := h.srv
		s.mu.Lock()
		defer s.mu.Unlock()
		want := map[stateKey]int{}
		for _, j := range s.jobs {
			want[stateKey{j.User, j.State}]++
		}
		if !reflect.DeepEqual(s.stateCounts, want) && !(len(want) == 0 && len(s.stateCounts) == 0) {
			t.Errorf("%s: kept counts %v, the live jobs %v", step, s.stateCounts, want)
		}
	}
	check("empty")
	first := h.submit(jobSrc("  resources { cpus = 8 }"))[0]
	h.submit(jobSrc("  resources { cpus = 8 }\n  array { count = 3 }"))
	req := h.submitReq(jobSrc(""))
	req.Overrides = &api.SubmitOverrides{Hold: true}
	if _, err := h.client.Submit(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	check("submitted")
	h.schedule()
	check("one started")
	h.report(first, api.StateCompleted, 0)
	check("one ended")
	h.schedule()
	check("the next started")
	h.srv.archiveEnded(time.Now())
	check("archived")
	h.restart(h.agent)
	check("restarted")
}
