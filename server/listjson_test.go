package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// The streamed list must be byte for byte what writeJSON sends, so no
// client can tell the difference.
func TestWriteJobsJSONSameBytes(t *testing.T) {
	code := 3
	tests := []struct {
		name string
		jobs []api.Job
	}{
		{"empty", []api.Job{}},
		{"one", []api.Job{{ID: 1, Name: "a", State: api.StatePending}}},
		{"several, escaped", []api.Job{
			{ID: 1, Name: "<b>&\"x\"</b>", User: "u", State: api.StateRunning},
			{ID: 2, Name: "ünï\u2028", State: api.StateCompleted, ExitCode: &code},
			{ID: 3},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, got := httptest.NewRecorder(), httptest.NewRecorder()
			writeJSON(want, http.StatusOK, tc.jobs)
			writeJobsJSON(got, slices.Values(tc.jobs))
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("streamed:\n%s\nwriteJSON:\n%s", got.Body, want.Body)
			}
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Fatalf("status/header %d %q, want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
		})
	}
}

// A full list converts jobs a chunk at a time: every matching job comes
// once, in id order, across chunk boundaries; a job that left the live set
// meanwhile is left out.
func TestListedJobsChunks(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  array {\n    count = " + strconv.Itoa(2*listChunk+3) + "\n  }"))
	all := func(*job) bool { return true }
	var got []uint64
	for aj := range h.srv.listedJobs(ids, all, (*job).apiJob) {
		got = append(got, aj.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %d jobs %v..., want %d in id order", len(got), got[:min(len(got), 5)], len(ids))
	}
	h.srv.mu.Lock()
	delete(h.srv.jobs, ids[listChunk]) // as the archive sweep does
	h.srv.mu.Unlock()
	got = got[:0]
	for aj := range h.srv.listedJobs(ids, all, (*job).apiJob) {
		got = append(got, aj.ID)
	}
	if want := slices.Delete(slices.Clone(ids), listChunk, listChunk+1); !slices.Equal(got, want) {
		t.Fatalf("after job %d left: listed %d jobs, want %d without it", ids[listChunk], len(got), len(want))
	}
	// Stopping early stops the walk.
	n := 0
	for range h.srv.listedJobs(ids, all, (*job).apiJob) {
		if n++; n == 3 {
			break
		}
	}
}
