package agent

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// countingExec counts the launches of each job's attempts.
type countingExec struct {
	mu       sync.Mutex
	launched []uint64 // attempts, in order
}

func (c *countingExec) Launch(_ context.Context, a api.Assignment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launched = append(c.launched, a.Attempt)
	return nil
}
func (c *countingExec) Cancel(uint64, string) error { return nil }
func (c *countingExec) Signal(uint64, string) error { return nil }
func (c *countingExec) Release(uint64) error        { return nil }

// TestLaunchOfHeldJobIsRefused: a launch of a job the runner holds starts
// it again only for a later attempt; a second delivery of the same run, a
// launch of an earlier run, or any launch of a job adopted after a restart
// (attempt unknown) is refused.
func TestLaunchOfHeldJobIsRefused(t *testing.T) {
	launch := func(attempt uint64) api.Command {
		return api.Command{Kind: api.CommandLaunch, JobID: 7, Launch: &api.Assignment{JobID: 7, Attempt: attempt}}
	}
	tests := []struct {
		name    string
		adopted bool
		cmds    []api.Command
		want    []uint64
	}{
		{"first launch", false, []api.Command{launch(5)}, []uint64{5}},
		{"same attempt twice", false, []api.Command{launch(5), launch(5)}, []uint64{5}},
		{"earlier attempt after a later one", false, []api.Command{launch(6), launch(5)}, []uint64{6}},
		{"later attempt", false, []api.Command{launch(5), launch(6)}, []uint64{5, 6}},
		{"adopted, attempt unknown", true, []api.Command{launch(5)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &countingExec{}
			r := NewRunner(Config{Node: api.NodeRegistration{Name: "n1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil, ex)
			if tc.adopted {
				r.Adopted(7)
			}
			for _, c := range tc.cmds {
				r.apply(context.Background(), c)
			}
			ex.mu.Lock()
			got := ex.launched
			ex.mu.Unlock()
			if len(got) != len(tc.want) {
				t.Fatalf("launched attempts %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("launched attempts %v, want %v", got, tc.want)
				}
			}
		})
	}
}
