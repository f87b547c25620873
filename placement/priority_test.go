package placement

import (
	"testing"
	"time"
)

func TestEffectivePriority(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name string
		job  Job
		w    PriorityWeights
		want PriorityFactors
	}{
		{"zero weights keep the raw priority", Job{Priority: 300, Submit: t0.Add(-day), FairShare: 0.5},
			PriorityWeights{}, PriorityFactors{Priority: 0.3, Age: 1.0 / 7, FairShare: 0.5, Total: 300}},
		{"weighted sum", Job{Priority: 500, Submit: t0.Add(-2 * day), FairShare: 0.25},
			PriorityWeights{Priority: 1000, Age: 100, FairShare: 400, AgeMax: 4 * day},
			PriorityFactors{Priority: 0.5, Age: 0.5, FairShare: 0.25, Total: 500 + 50 + 100}},
		{"age caps at AgeMax", Job{Submit: t0.Add(-30 * day)},
			PriorityWeights{Age: 10, AgeMax: day}, PriorityFactors{Age: 1, Total: 10}},
		{"future submit is no wait", Job{Priority: 10, Submit: t0.Add(time.Hour)},
			PriorityWeights{Age: 10}, PriorityFactors{Priority: 0.01, Total: 0}},
		{"out-of-range fair share clamps", Job{Submit: t0, FairShare: 7},
			PriorityWeights{FairShare: 2}, PriorityFactors{FairShare: 1, Total: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := EffectivePriority(c.job, t0, c.w)
			const eps = 1e-9
			if d := got.Total - c.want.Total; d > eps || d < -eps || got.Age-c.want.Age > eps || c.want.Age-got.Age > eps ||
				got.Priority != c.want.Priority || got.FairShare != c.want.FairShare {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestFairShareOrdersQueue: with a fair-share weight, the job of the
// account that used less of its share starts first on a one-node cluster,
// though it has lower priority and came later; with zero weights the plain
// order (priority first) holds.
func TestFairShareOrdersQueue(t *testing.T) {
	nodes := []Node{{Name: "n1", CPUs: 4, Memory: 1 << 30}}
	pending := []Job{
		{ID: 1, Priority: 600, Submit: t0.Add(-time.Hour), FairShare: 0.1, PerNode: Request{CPUs: 4}, Walltime: time.Hour},
		{ID: 2, Priority: 500, Submit: t0, FairShare: 0.9, PerNode: Request{CPUs: 4}, Walltime: time.Hour},
	}
	s := Snapshot{Nodes: nodes, Pending: pending}
	for _, c := range []struct {
		w    PriorityWeights
		want uint64
	}{
		{PriorityWeights{}, 1},
		{PriorityWeights{Priority: 1000, FairShare: 1000}, 2},
		{PriorityWeights{Priority: 1000}, 1},
	} {
		d := Plan(s, t0, Policy{Depth: DepthEASY, Weights: c.w})
		if len(d.Starts) != 1 || d.Starts[0].JobID != c.want {
			t.Errorf("weights %+v: starts %+v, want job %d", c.w, d.Starts, c.want)
		}
	}
}
