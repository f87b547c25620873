package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
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
			writeJobsJSON(got, pointers(tc.jobs))
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

// The streamed brief list is byte for byte what writeJSON of the whole
// api.JobList sent, across chunks and with characters JSON escapes.
func TestWriteBriefJSONSameBytes(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  array {\n    count = " + strconv.Itoa(listChunk+5) + "\n  }"))
	ids = append(ids, h.submit(jobSrc(""))...)
	all := func(*job) bool { return true }
	tsv := []byte(api.BriefColumns + "\n")
	h.srv.mu.Lock()
	for _, id := range ids {
		tsv = h.srv.jobs[id].apiBrief().AppendTSV(tsv)
	}
	h.srv.mu.Unlock()
	want, got := httptest.NewRecorder(), httptest.NewRecorder()
	writeJSON(want, http.StatusOK, api.JobList{TSV: string(tsv)})
	h.srv.writeBriefJSON(got, ids, all)
	if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
		t.Fatalf("streamed %d bytes, writeJSON %d:\n%.300s\n%.300s", got.Body.Len(), want.Body.Len(), got.Body, want.Body)
	}
	// Lines escaped one chunk at a time are the whole text escaped.
	lines := []string{"a\t<b>&\"q\"\n", "\u2028ünï\\\n", "\x01\xff\n"}
	var bw bytes.Buffer
	w := bufio.NewWriter(&bw)
	for _, l := range lines {
		writeEscaped(w, []byte(l))
	}
	w.Flush()
	whole, _ := json.Marshal(strings.Join(lines, ""))
	if !bytes.Equal(bw.Bytes(), whole[1:len(whole)-1]) {
		t.Fatalf("escaped by chunks %q, whole %q", bw.Bytes(), whole)
	}
}

// pointers yields a pointer to each element of jobs.
func pointers(jobs []api.Job) iter.Seq[*api.Job] {
	return func(yield func(*api.Job) bool) {
		for i := range jobs {
			if !yield(&jobs[i]) {
				return
			}
		}
	}
}
