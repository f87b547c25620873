package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPassAfterOneEvent is one pass after one job ended and another
// started, on the synthetic clusters of BenchmarkPlan with a queue of 100
// pending jobs: "kept" updates a State by the two deltas and plans on it,
// "rebuilt" plans on a whole snapshot as before. The kept pass should cost
// what changed and the jobs looked at, not the nodes. Run:
// go test -bench PassAfterOneEvent -run XXX -cpu 1 ./placement
func BenchmarkPassAfterOneEvent(b *testing.B) {
	for _, nodes := range []int{1000, 10000, 50000} {
		r := rand.New(rand.NewPCG(1, 2))
		ns, run := synthCluster(r, nodes, 0.6, t0)
		pending := synthQueue(r, 100, t0)
		p := Policy{Depth: DepthEASY}
		now := t0.Add(time.Minute)
		b.Run(fmt.Sprintf("nodes=%d/kept", nodes), func(b *testing.B) {
			st := NewState(ns, run)
			i := 0
			for b.Loop() {
				x := run[i%len(run)]
				st.End(x.JobID)
				st.Start(x)
				st.Plan(pending, now, p)
				i++
			}
		})
		b.Run(fmt.Sprintf("nodes=%d/rebuilt", nodes), func(b *testing.B) {
			s := Snapshot{Nodes: ns, Running: run, Pending: pending}
			for b.Loop() {
				Plan(s, now, p)
			}
		})
	}
}
