package server

import (
	"context"
	"testing"

	"github.com/hpc-sched/hpc/api"
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
