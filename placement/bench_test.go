package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPlan is one full Plan pass with EASY backfilling on synthetic
// clusters (8 in 10 nodes CPU-only, the rest 8-GPU H100 NVSwitch and 4-GPU
// A100 NVLink-pair nodes, about 60% of nodes running something) with a
// mixed pending queue. Run: go test -bench Plan -run XXX -cpu 1 ./placement
func BenchmarkPlan(b *testing.B) {
	for _, size := range []struct{ nodes, jobs int }{{1000, 10000}, {1000, 100000}, {10000, 10000}, {10000, 100000}} {
		b.Run(fmt.Sprintf("nodes=%d/jobs=%d", size.nodes, size.jobs), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			nodes, run := synthCluster(r, size.nodes, 0.6, t0)
			s := Snapshot{Nodes: nodes, Running: run, Pending: synthQueue(r, size.jobs, t0)}
			p := Policy{Depth: DepthEASY, Weights: PriorityWeights{Priority: 1000, Age: 168, AgeMax: 168 * time.Hour}}
			b.ReportAllocs()
			b.ResetTimer()
			var d Decisions
			for b.Loop() {
				d = Plan(s, t0, p)
			}
			b.ReportMetric(float64(len(d.Starts)), "starts")
		})
	}
}
