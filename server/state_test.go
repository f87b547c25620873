package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// checkHistory asserts the job's stored transitions, each with a time and a reason.
func checkHistory(t *testing.T, j job, want ...api.JobState) {
	t.Helper()
	if got := states(j.History); !slices.Equal(got, want) {
		t.Errorf("job %d history %v, want %v", j.ID, got, want)
	}
	for i, tr := range j.History {
		if tr.Time.IsZero() || tr.Reason == "" {
			t.Errorf("job %d transition %d (%s) has time %v reason %q: every transition needs both", j.ID, i, tr.State, tr.Time, tr.Reason)
		}
		if i > 0 && tr.Time.Before(j.History[i-1].Time) {
			t.Errorf("job %d transition %d goes back in time", j.ID, i)
		}
	}
	if j.State != want[len(want)-1] {
		t.Errorf("job %d state %s, history ends %s", j.ID, j.State, want[len(want)-1])
	}
}

// storedJob reads job id back from the store itself.
func (h *harness) storedJob(id uint64) job {
	h.t.Helper()
	var out job
	found := false
	err := h.st.Jobs(func(k uint64, data []byte) error {
		if k == id {
			found = true
			return json.Unmarshal(data, &out)
		}
		return nil
	})
	if err != nil || !found {
		h.t.Fatalf("stored job %d: found %v, %v", id, found, err)
	}
	return out
}

func TestHoldRelease(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	id := h.submit(jobSrc(""))[0]
	if j, err := h.client.Hold(ctx, id); err != nil || j.State != api.StateHeld {
		t.Fatalf("hold: %v %s", err, j.State)
	}
	h.schedule()
	if st := h.state(id); st != api.StateHeld {
		t.Fatalf("held job is %s after a scheduling pass", st)
	}
	if st := h.storedJob(id).State; st != api.StateHeld {
		t.Errorf("hold not stored: %s", st)
	}
	if _, err := h.client.Hold(ctx, id); apiStatus(err) != 409 {
		t.Errorf("second hold: %v, want 409", err)
	}
	if j, err := h.client.Release(ctx, id); err != nil || j.State != api.StatePending {
		t.Fatalf("release: %v %s", err, j.State)
	}
	h.schedule()
	checkHistory(t, h.job(id), api.StatePending, api.StateHeld, api.StatePending, api.StateRunning)
}

func TestCancelPending(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	j, err := h.client.Cancel(context.Background(), id)
	if err != nil || j.State != api.StateCancelled || j.EndTime == nil {
		t.Fatalf("cancel: %v, state %s, end %v", err, j.State, j.EndTime)
	}
	stored := h.storedJob(id)
	checkHistory(t, stored, api.StatePending, api.StateCancelled)
	if r := stored.History[1].Reason; !strings.Contains(r, "cancelled by uid 0") {
		t.Errorf("cancel reason %q", r)
	}
	h.schedule()
	if n := len(h.agent.launchedIDs()); n != 0 {
		t.Errorf("a cancelled job was launched")
	}
	// Terminal states never change: a late outcome is ignored.
	for _, st := range []api.JobState{api.StateCompleted, api.StateFailed, api.StateNodeFail} {
		h.report(id, st, 7)
	}
	after := h.job(id)
	if after.State != api.StateCancelled || after.ExitCode != nil || len(after.History) != 2 {
		t.Errorf("late outcomes changed a cancelled job: %s exit %v history %v", after.State, after.ExitCode, states(after.History))
	}
}

func TestRunningRecordsAllocation(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc("  resources {\n    cpus = 2\n    memory = \"2GiB\"\n  }"))[0]
	h.schedule()
	j := h.job(id)
	checkHistory(t, j, api.StatePending, api.StateRunning)
	if j.Start == nil || len(j.Alloc) != 1 || j.Alloc[0].Node != "n1" || len(j.Alloc[0].CPUs) != 2 || j.Alloc[0].Memory != 2*gib {
		t.Fatalf("allocation %+v start %v", j.Alloc, j.Start)
	}
	if st := h.storedJob(id); st.State != api.StateRunning || len(st.Alloc) != 1 {
		t.Errorf("RUNNING not stored with its allocation: %s %+v", st.State, st.Alloc)
	}
	h.agent.mu.Lock()
	launched := slices.Clone(h.agent.launched)
	h.agent.mu.Unlock()
	if len(launched) != 1 || launched[0].JobID != id || !slices.Equal(launched[0].CPUs, j.Alloc[0].CPUs) ||
		launched[0].Memory != 2*gib || !slices.Equal(launched[0].NodeList, []string{"n1"}) || launched[0].ArrayIndex != -1 {
		t.Errorf("launched %+v", launched)
	}
	aj, err := h.client.Job(context.Background(), id)
	if err != nil || !slices.Equal(aj.Nodes, []string{"n1"}) || len(aj.CPUIDs["n1"]) != 2 {
		t.Errorf("API job: %v nodes %v cpus %v", err, aj.Nodes, aj.CPUIDs)
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		state  api.JobState
		code   int
		signal string
	}{
		{api.StateCompleted, 0, ""},
		{api.StateFailed, 3, ""},
		{api.StateFailed, 137, "SIGKILL"},
		{api.StateTimeout, 143, "SIGTERM"},
		{api.StateOutOfMemory, 137, "SIGKILL"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s_%d", c.state, c.code), func(t *testing.T) {
			h := newHarness(t, testConfig())
			id := h.submit(jobSrc(""))[0]
			h.schedule()
			h.srv.Report(api.Outcome{JobID: id, Node: "n1", State: c.state, ExitCode: c.code, Signal: c.signal,
				Reason: "why", Usage: api.Usage{ElapsedSeconds: 4, CPUSeconds: 2, PeakMemory: 1 << 20}})
			j := h.storedJob(id)
			checkHistory(t, j, api.StatePending, api.StateRunning, c.state)
			if j.ExitCode == nil || *j.ExitCode != c.code || j.Signal != c.signal || j.End == nil {
				t.Errorf("exit %v signal %q end %v", j.ExitCode, j.Signal, j.End)
			}
			if j.Usage == nil || j.Usage.ElapsedSeconds != 4 || j.Usage.CPUSeconds != 2 || j.Usage.PeakMemory != 1<<20 {
				t.Errorf("usage %+v", j.Usage)
			}
			if h.agent.released == nil || h.agent.released[0] != id {
				t.Errorf("agent not told to release job %d: %v", id, h.agent.released)
			}
		})
	}
}

func TestExit85Requeues(t *testing.T) {
	ckpt := "  checkpoint {\n    max_restarts = 2\n  }"
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(ckpt))[0]
	plain := h.submit(jobSrc(""))[0]
	want := []api.JobState{api.StatePending}
	for run := 0; run < 3; run++ {
		h.schedule()
		want = append(want, api.StateRunning)
		h.agent.mu.Lock()
		last := h.agent.launched[len(h.agent.launched)-1]
		h.agent.mu.Unlock()
		if last.JobID != plain && last.RestartCount != run {
			t.Errorf("run %d launched with restart count %d", run, last.RestartCount)
		}
		h.report(id, api.StateFailed, 85)
		if run < 2 {
			want = append(want, api.StateRequeued, api.StatePending)
			if j := h.job(id); j.Restarts != run+1 || j.Alloc != nil || j.ExitCode != nil {
				t.Fatalf("after restart %d: restarts %d alloc %v exit %v", run+1, j.Restarts, j.Alloc, j.ExitCode)
			}
		} else {
			want = append(want, api.StateFailed)
		}
	}
	j := h.storedJob(id)
	checkHistory(t, j, want...)
	if j.ExitCode == nil || *j.ExitCode != 85 || j.Restarts != 2 {
		t.Errorf("final exit %v restarts %d", j.ExitCode, j.Restarts)
	}
	// Without a checkpoint block exit code 85 is an ordinary failure.
	h.report(plain, api.StateFailed, 85)
	checkHistory(t, h.job(plain), api.StatePending, api.StateRunning, api.StateFailed)
}

func TestArrayJob(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.submit(jobSrc("  array {\n    count = 5\n    max_running = 2\n  }"))
	if len(ids) != 5 {
		t.Fatalf("array submit gave %v", ids)
	}
	for i, id := range ids {
		j := h.job(id)
		if id != ids[0]+uint64(i) || j.ArrayJobID != ids[0] || j.ArrayIndex != i {
			t.Errorf("task %d: id %d array job %d index %d", i, id, j.ArrayJobID, j.ArrayIndex)
		}
	}
	for pass := 0; pass < 10; pass++ {
		h.schedule()
		var running []uint64
		for _, id := range ids {
			if h.state(id) == api.StateRunning {
				running = append(running, id)
			}
		}
		if len(running) > 2 {
			t.Fatalf("pass %d: %d tasks run at once (%v), max_running is 2", pass, len(running), running)
		}
		// Tasks start in index order, as the cap lets them: the started
		// ones are always a prefix of the array.
		for i, id := range ids {
			if i > 0 && h.state(id) != api.StatePending && h.state(ids[i-1]) == api.StatePending {
				t.Errorf("pass %d: task %d started before task %d", pass, i, i-1)
			}
		}
		if len(running) == 0 {
			break
		}
		h.report(running[0], api.StateCompleted, 0)
	}
	if got := h.agent.launchedIDs(); len(got) != len(ids) {
		t.Errorf("launched %v, want each of %v once", got, ids)
	}
	for _, id := range ids {
		if st := h.state(id); st != api.StateCompleted {
			t.Errorf("task %d ended %s", id, st)
		}
	}
}
