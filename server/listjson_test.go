package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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
			writeJobsJSON(got, tc.jobs)
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("streamed:\n%s\nwriteJSON:\n%s", got.Body, want.Body)
			}
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Fatalf("status/header %d %q, want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
		})
	}
}
