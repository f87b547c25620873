package server

import (
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Every run of a requeued job keeps its own accounting record, and the
// job's usage is the sum over its runs (not the last run's only).
func TestEveryRunIsAccounted(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  checkpoint {\n    max_restarts = 1\n  }"))[0]
	h.schedule()
	h.report(id, api.StateFailed, 85) // checkpointed: runs again
	h.schedule()
	h.report(id, api.StateCompleted, 0)

	j := h.storedJob(id)
	if len(j.Runs) != 2 {
		t.Fatalf("%d runs recorded, want 2: %+v", len(j.Runs), j.Runs)
	}
	for i, want := range []struct {
		state api.JobState
		exit  int
	}{{api.StateRequeued, 85}, {api.StateCompleted, 0}} {
		r := j.Runs[i]
		if r.Index != i || r.State != want.state || r.ExitCode == nil || *r.ExitCode != want.exit {
			t.Errorf("run %d: index %d state %s exit %v; want %d %s %d", i, r.Index, r.State, r.ExitCode, i, want.state, want.exit)
		}
		if len(r.Nodes) != 1 || r.Nodes[0] != "n1" || r.CPUs != 1 || r.Cause == "" || r.Start.IsZero() {
			t.Errorf("run %d: nodes %v cpus %d cause %q start %v", i, r.Nodes, r.CPUs, r.Cause, r.Start)
		}
		if r.Usage.ElapsedSeconds != 10 || r.Usage.CPUSeconds != 5 || r.Usage.PeakMemory != 1<<20 {
			t.Errorf("run %d usage %+v, want the outcome's", i, r.Usage)
		}
	}
	if j.Usage == nil || j.Usage.ElapsedSeconds != 20 || j.Usage.CPUSeconds != 10 || j.Usage.PeakMemory != 1<<20 {
		t.Errorf("job usage %+v, want the sum of both runs (20 s elapsed, 10 s CPU)", j.Usage)
	}
	got, err := h.client.Job(t.Context(), id)
	if err != nil || len(got.Runs) != 2 {
		t.Errorf("API shows %d runs (%v), want 2", len(got.Runs), err)
	}
}

// A job whose node vanished gets a NODE_FAIL run with the time it held
// the node, GPU-seconds included.
func TestLostRunIsAccounted(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	start := *h.job(id).Start
	h.srv.endLost(id, "node lost", start.Add(30*time.Second))
	j := h.job(id)
	if j.State != api.StatePending || len(j.Runs) != 1 {
		t.Fatalf("state %s runs %+v; want PENDING with one run", j.State, j.Runs)
	}
	r := j.Runs[0]
	if r.State != api.StateRequeued || !strings.HasPrefix(r.Cause, "node lost") || r.Usage.ElapsedSeconds != 30 || r.ExitCode != nil {
		t.Errorf("run %+v: want REQUEUED, cause 'node lost', 30 s, no exit code", r)
	}
}

func TestTotalUsage(t *testing.T) {
	runs := []api.Run{
		{Usage: api.Usage{ElapsedSeconds: 1, CPUSeconds: 2, PeakMemory: 10, GPUSeconds: 3}},
		{Usage: api.Usage{ElapsedSeconds: 4, CPUSeconds: 5, PeakMemory: 7, GPUSeconds: 6}},
	}
	want := api.Usage{ElapsedSeconds: 5, CPUSeconds: 7, PeakMemory: 10, GPUSeconds: 9}
	if got := api.TotalUsage(runs); got != want {
		t.Errorf("TotalUsage = %+v, want %+v", got, want)
	}
	if got := api.TotalUsage(nil); got != (api.Usage{}) {
		t.Errorf("TotalUsage(nil) = %+v", got)
	}
}
