package server

import (
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// A two-node job runs as a gang: when one part fails, the other is
// stopped, and the job ends with the failing part's state and node.
func TestGangEndsWithItsFirstFailingPart(t *testing.T) {
	tests := []struct {
		name       string
		first      api.JobState // state of n1's part, reported first
		wantStop   bool         // n2 is told to stop
		second     api.JobState // state n2 reports
		wantState  api.JobState
		wantReason string
	}{
		{"all complete", api.StateCompleted, false, api.StateCompleted, api.StateCompleted, ""},
		{"first fails", api.StateFailed, true, api.StateCancelled, api.StateFailed, "on n1:"},
		{"first OOM", api.StateOutOfMemory, true, api.StateCancelled, api.StateOutOfMemory, "on n1:"},
		{"second fails", api.StateCompleted, false, api.StateFailed, api.StateFailed, "on n2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			second := &fakeAgent{}
			if err := h.srv.AttachAgent(cpuNode("n2"), second); err != nil {
				t.Fatal(err)
			}
			id := h.submit(jobSrc("  nodes = 2"))[0]
			h.schedule()
			if st := h.state(id); st != api.StateRunning {
				t.Fatalf("state %s, want RUNNING", st)
			}
			if len(h.agent.launchedIDs()) != 1 || len(second.launchedIDs()) != 1 {
				t.Fatalf("launched on n1 %v, n2 %v; want one part each", h.agent.launchedIDs(), second.launchedIDs())
			}
			now := time.Now()
			h.srv.Report(api.Outcome{JobID: id, Node: "n1", State: tt.first, ExitCode: 1, Reason: "part n1", End: now,
				Usage: api.Usage{CPUSeconds: 3, PeakMemory: 100}})
			if st := h.state(id); st != api.StateRunning {
				t.Fatalf("after one part: state %s, want RUNNING until every part ended", st)
			}
			if got := len(second.cancelled()) > 0; got != tt.wantStop {
				t.Fatalf("n2 told to stop: %v, want %v", got, tt.wantStop)
			}
			h.srv.Report(api.Outcome{JobID: id, Node: "n2", State: tt.second, ExitCode: 2, Reason: "part n2", End: now.Add(time.Second),
				Usage: api.Usage{CPUSeconds: 4, PeakMemory: 300}})
			j := h.job(id)
			if j.State != tt.wantState || !strings.Contains(j.Reason, tt.wantReason) {
				t.Fatalf("ended %s (%q), want %s with %q", j.State, j.Reason, tt.wantState, tt.wantReason)
			}
			if j.Usage.CPUSeconds != 7 || j.Usage.PeakMemory != 300 {
				t.Errorf("usage %+v, want cpu 7 s summed and peak 300 the largest", *j.Usage)
			}
		})
	}
}

func TestOutcomeFromAForeignNodeIsIgnored(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	h.srv.Report(api.Outcome{JobID: id, Node: "elsewhere", State: api.StateFailed, ExitCode: 1})
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("state %s after a report from a node outside the allocation, want RUNNING", st)
	}
}
