package sim

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

// TestKeptStateMatchesSnapshotPlan replays the same workloads twice: with
// the kept placement.State Replay uses by default (updated by each start
// and end) and with placement.Plan on a whole snapshot every pass. Every
// job must start at the same instant on the same CPUs, GPUs and shares.
func TestKeptStateMatchesSnapshotPlan(t *testing.T) {
	tr, err := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	if err != nil {
		t.Fatal(err)
	}
	type replay struct {
		name  string
		nodes []placement.Node
		jobs  []Job
		pol   placement.Policy
	}
	var cases []replay
	for _, b := range []placement.Backfill{placement.EASY, placement.Conservative, placement.FCFS} {
		nodes, jobs, _, err := SWFWorkload(tr, 0, 500, 400)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, replay{"lublin/" + string(b), nodes, jobs, policyOf(b)})
	}
	for _, share := range []float64{0, 0.3} {
		nodes, jobs := GenerateGPUWorkload(GPUWorkloadOptions{Seed: 3, Jobs: 400, ShareJobs: share, ModelJobs: share})
		cases = append(cases, replay{fmt.Sprintf("gpu/share=%v", share), nodes, jobs, policyOf(placement.EASY)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kept, err := Replay(c.nodes, c.jobs, c.pol, nil)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := Replay(c.nodes, c.jobs, c.pol, placement.Plan)
			if err != nil {
				t.Fatal(err)
			}
			if kept.PlanCalls != snap.PlanCalls {
				t.Fatalf("%d passes with the kept state, %d with snapshots", kept.PlanCalls, snap.PlanCalls)
			}
			for i := range kept.Placed {
				if !reflect.DeepEqual(kept.Placed[i], snap.Placed[i]) {
					t.Fatalf("job %d: kept state %+v, snapshot %+v", c.jobs[i].ID, kept.Placed[i], snap.Placed[i])
				}
			}
		})
	}
}
