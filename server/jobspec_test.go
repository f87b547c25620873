package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

// The tasks of an array share one jobSpec, and so do jobs submitted alike
// and jobs loaded alike after a restart; an update of one task gives it a
// spec of its own and leaves the others' as they were, in memory and in
// the store.
func TestJobSpecSharedAndCopiedOnUpdate(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  array {\n    count = 3\n  }"))
	single := h.submit(jobSrc(""))[0]
	alike := h.submit(jobSrc(""))[0]
	same := func(a, b uint64) bool { return h.job(a).jobSpec == h.job(b).jobSpec }
	if !same(ids[0], ids[2]) {
		t.Error("the tasks of an array have specs of their own")
	}
	if !same(single, alike) {
		t.Error("two jobs submitted alike have specs of their own")
	}

	was := h.job(ids[0]).Priority
	prio := was + 7
	resp, err := h.client.Actions(context.Background(), api.ActionRequest{Action: api.ActionUpdate,
		Targets: []string{jobLabel(ptr(h.job(ids[1])))}, Priority: &prio})
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Error != "" {
		t.Fatalf("update: %v %+v", err, resp)
	}
	check := func(when string) {
		t.Helper()
		for k, id := range ids {
			want := was
			if k == 1 {
				want = prio
			}
			if got := h.job(id).Priority; got != want {
				t.Errorf("%s: task %d has priority %d in memory, want %d", when, k, got, want)
			}
			if got := h.storedJob(id).Priority; got != want {
				t.Errorf("%s: task %d has priority %d in the store, want %d", when, k, got, want)
			}
		}
	}
	check("after the update")
	if same(ids[0], ids[1]) {
		t.Error("the updated task still shares its spec")
	}
	h.restart(&fakeAgent{})
	check("after a restart")
	if !same(ids[0], ids[2]) || !same(single, alike) {
		t.Error("after a restart, jobs alike have specs of their own")
	}
	if same(ids[0], ids[1]) {
		t.Error("after a restart, the updated task shares the others' spec")
	}
}

func ptr[T any](v T) *T { return &v }

// A task's output and error paths are its spec's patterns expanded for
// it, the same before and after a restart, without a string per task in
// memory; a record stored with the expanded paths keeps them.
func TestOutputPathsFromPatterns(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  output = \"o-%A_%a.out\"\n  error = \"e-%j-%x.err\"\n  array {\n    count = 2\n  }"))
	joined := h.submit(jobSrc(""))[0]
	check := func(when string) {
		t.Helper()
		for k, id := range ids {
			j := h.job(id)
			wantOut := filepath.Join(h.cwd, fmt.Sprintf("o-%d_%d.out", ids[0], k))
			wantErr := filepath.Join(h.cwd, fmt.Sprintf("e-%d-t.err", id))
			if aj := j.apiJob(); aj.Output != wantOut || aj.Error != wantErr {
				t.Errorf("%s: task %d shows output %q error %q, want %q %q", when, k, aj.Output, aj.Error, wantOut, wantErr)
			}
			if a := j.assignment(placement.NodeAlloc{Node: "n1"}); a.Stdout != wantOut || a.Stderr != wantErr {
				t.Errorf("%s: task %d is launched with stdout %q stderr %q, want %q %q", when, k, a.Stdout, a.Stderr, wantOut, wantErr)
			}
			if j.Output != "" || j.Error != "" {
				t.Errorf("%s: task %d keeps its own path strings %q %q", when, k, j.Output, j.Error)
			}
		}
		want := filepath.Join(h.cwd, fmt.Sprintf("hpc-%d.out", joined))
		if aj := ptr(h.job(joined)).apiJob(); aj.Output != want || aj.Error != want {
			t.Errorf("%s: default output %q error %q, want both %q", when, aj.Output, aj.Error, want)
		}
	}
	check("after submit")
	h.restart(&fakeAgent{})
	check("after a restart")

	// A record as older servers stored it: the expanded paths, no patterns.
	old := h.job(joined)
	old.ownSpec()
	old.OutputPattern, old.ErrorPattern = "", ""
	old.Output, old.Error = "/elsewhere/out", "/elsewhere/err"
	if aj := old.apiJob(); aj.Output != "/elsewhere/out" || aj.Error != "/elsewhere/err" {
		t.Errorf("a stored path is not kept: output %q error %q", aj.Output, aj.Error)
	}
}

// Decoding a record into a job leaves the spec it shared with others as
// it was.
func TestUnmarshalJobOwnsItsSpec(t *testing.T) {
	shared := &jobSpec{Name: "a", Priority: 1}
	j, other := &job{jobSpec: shared}, &job{jobSpec: shared}
	if err := json.Unmarshal([]byte(`{"name":"b","priority":2,"id":7}`), j); err != nil {
		t.Fatal(err)
	}
	if j.Name != "b" || j.Priority != 2 || j.ID != 7 {
		t.Errorf("decoded %q priority %d id %d", j.Name, j.Priority, j.ID)
	}
	if other.Name != "a" || other.Priority != 1 {
		t.Errorf("the shared spec changed: %q priority %d", other.Name, other.Priority)
	}
}
