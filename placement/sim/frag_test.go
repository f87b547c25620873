package sim

import (
	"math"
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

// TestFragmentation hand-computes the measure on one 4-GPU node: half the
// workload asks for 2 whole GPUs, half for a 0.5 share.
func TestFragmentation(t *testing.T) {
	node := placement.Node{Name: "g", CPUs: 8, Memory: 64, GPUs: []placement.GPU{{ID: 0}, {ID: 1}, {ID: 2}, {ID: 3}}}
	shapes := workloadShapes([]Job{
		{Job: placement.Job{PerNode: placement.Request{CPUs: 2, GPU: placement.GPURequest{Count: 2}}}},
		{Job: placement.Job{PerNode: placement.Request{CPUs: 1, GPU: placement.GPURequest{Count: 1, Share: 0.5}}}},
		{Job: placement.Job{PerNode: placement.Request{CPUs: 4}}}, // CPU-only: not a shape
	})
	cases := []struct {
		name       string
		used       map[int]int
		cpuFree    int
		frag, free float64
	}{
		{"empty", nil, 8, 0, 4},
		// GPU 0 0.7 used: its 0.3 is too small for a 0.5 share and no
		// whole-GPU shape can use it: lost for both shapes.
		{"one small leftover", map[int]int{0: 70}, 8, 0.3, 3.3},
		// Three GPUs held whole: the 2-GPU shape cannot use the last one
		// (lost 1 for half the workload), the share can.
		{"lone GPU", map[int]int{0: 100, 1: 100, 2: 100}, 8, 0.5, 1},
		// No CPU left: every free GPU is lost to every shape.
		{"no CPUs", nil, 0, 4, 4},
	}
	for _, c := range cases {
		st, err := newState([]placement.Node{node}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for g, u := range c.used {
			st.gpuUsed[0][g] = u
		}
		st.cpuFree[0] = c.cpuFree
		frag, free := st.fragmentation(shapes)
		if math.Abs(frag-c.frag) > 1e-9 || math.Abs(free-c.free) > 1e-9 {
			t.Errorf("%s: fragmentation %v of %v free, want %v of %v", c.name, frag, free, c.frag, c.free)
		}
	}
}
