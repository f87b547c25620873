package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestExclusiveMatchesGeneral checks that conservative reservations on
// single-CPU nodes (the SWF machines) come out the same from the
// exclusive fast path as from the general per-node path.
func TestExclusiveMatchesGeneral(t *testing.T) {
	reserved := 0
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		nn := 8 + r.IntN(56)
		nodes := make([]Node, nn)
		for i := range nodes {
			nodes[i] = Node{Name: fmt.Sprintf("n%03d", i), CPUs: 1, Memory: 1 << 30}
			if r.IntN(20) == 0 {
				nodes[i].State = NodeDraining
			}
		}
		var run []Running
		for i := range nodes {
			if r.IntN(3) > 0 {
				end := t0.Add(time.Duration(1+r.IntN(3600)) * time.Second)
				run = append(run, Running{JobID: uint64(1000 + i), End: end,
					Nodes: []NodeAlloc{{Node: nodes[i].Name, CPUs: []int{0}}}})
			}
		}
		pend := make([]Job, 50+r.IntN(200))
		for i := range pend {
			pend[i] = Job{ID: uint64(i + 1), Submit: t0.Add(time.Duration(i) * time.Second),
				Nodes: 1 + r.IntN(nn/2), PerNode: Request{CPUs: 1},
				Walltime: time.Duration(1+r.IntN(7200)) * time.Second}
			if r.IntN(4) == 0 {
				pend[i].Nodes = 1
			}
		}
		s := Snapshot{Nodes: nodes, Running: run, Pending: pend}
		for _, depth := range []int{0, 5} {
			if depth == 0 {
				depth = DepthAll
			}
			p := Policy{Depth: depth}
			fast := Plan(s, t0, p)
			scan := planWith(s, t0, p, searchKnobs{}) // the node-by-node scan instead of busy steps
			if !reflect.DeepEqual(fast, scan) {
				t.Fatalf("seed %d depth %d: busy steps differ from the node scan", seed, depth)
			}
			// A filter that declares nothing turns every fast path off.
			slow := Plan(s, t0, Policy{Depth: depth, Filters: []Filter{acceptAll{}}})
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("seed %d depth %d: fast path differs from the general one%s", seed, depth, firstDiff(fast, slow))
			}
			for _, w := range fast.Waiting {
				if !w.ReservedStart.IsZero() {
					reserved++
				}
			}
		}
	}
	if reserved < 1000 {
		t.Fatalf("only %d reservations compared", reserved)
	}
}

// firstDiff describes the first decision two plans disagree on.
func firstDiff(a, b Decisions) string {
	if !reflect.DeepEqual(a.Starts, b.Starts) {
		return fmt.Sprintf("\nstarts %+v\n   vs  %+v", a.Starts, b.Starts)
	}
	for i := range min(len(a.Waiting), len(b.Waiting)) {
		if !reflect.DeepEqual(a.Waiting[i], b.Waiting[i]) {
			return fmt.Sprintf("\nwait %+v\n  vs %+v", a.Waiting[i], b.Waiting[i])
		}
	}
	return ""
}
