package placement

import (
	"math"
	"testing"
)

// GPUFragmentation's cost, case by case: whole-GPU shapes, GPU models and
// memory, and sharing. Each want is worked out by hand in the comment.
func TestGPUFragmentationCost(t *testing.T) {
	gpus := func(n int, model string, mem int64) []GPU {
		var g []GPU
		for i := range n {
			g = append(g, GPU{ID: i, Model: model, Memory: mem})
		}
		return g
	}
	h100 := gpus(8, "NVIDIA H100 80GB HBM3", 80*gib)
	l40s := gpus(8, "NVIDIA L40S", 48*gib)
	a100 := gpus(4, "NVIDIA A100-PCIE-40GB", 40*gib)
	gj := func(count int, share float64, model string) Job {
		return Job{ID: 1, Nodes: 1, PerNode: Request{CPUs: 1, Memory: gib, GPU: GPURequest{Count: count, Share: share, Model: model}}}
	}
	big := func(j Job) Job { j.PerNode.GPU.MinMemory = 48 * gib; return j }
	view := func(g []GPU, free, take uint64, shares ...int16) NodeView {
		v := NodeView{CPUs: 64, Memory: 1024 * gib, GPUs: g, FreeCPUs: 64, FreeMemory: 1024 * gib, FreeGPUs: free, TakeGPUs: take}
		if len(shares) > 0 {
			v.GPUShareUsed = shares
		}
		return v
	}
	tests := []struct {
		name    string
		pending []Job
		job     Job
		node    NodeView
		want    float64
	}{
		{"no pending GPU job", nil, gj(1, 0, ""), view(h100, 0xff, 1), 0},
		// GPUJobsOnly: a CPU-only job taking all 64 CPUs would leave no
		// room for the 8-GPU shape, yet costs nothing.
		{"CPU-only job", []Job{gj(8, 0, "")}, Job{ID: 1, Nodes: 1, PerNode: Request{CPUs: 64, Memory: gib}}, view(h100, 0xff, 0), 0},
		// 8 free: the 8-GPU shape fits (loses 0); after, 7 free: it loses all 7.
		{"breaking a whole 8-GPU node", []Job{gj(8, 0, "")}, gj(1, 0, ""), view(h100, 0xff, 1), 7},
		// The 8-GPU shape never fits a 4-GPU node: it loses 4, then 3.
		{"a node the shape cannot use", []Job{gj(8, 0, "")}, gj(1, 0, ""), view(a100, 0xf, 1), -1},
		// Half the queue wants 8 GPUs, half 1: 0.5*7 + 0.5*0.
		{"weights", []Job{gj(8, 0, ""), gj(1, 0, "")}, gj(1, 0, ""), view(h100, 0xff, 1), 3.5},
		// L40S-only jobs cannot use H100s: the H100 node loses 8 for them
		// before and 7 after; on the L40S node they lose nothing either way.
		{"model: other model's node", []Job{gj(1, 0, "L40S")}, gj(1, 0, ""), view(h100, 0xff, 1), -1},
		{"model: the shape's own model", []Job{gj(1, 0, "L40S")}, gj(1, 0, ""), view(l40s, 0xff, 1), 0},
		// "H100|A100" accepts the A100; a 4-GPU shape fits the 4 free
		// ones, then not: it loses 3.
		{"model alternatives", []Job{gj(4, 0, "h100 | a100")}, gj(1, 0, ""), view(a100, 0xf, 1), 3},
		// A shape that wants 48 GiB GPUs cannot use 40 GiB A100s.
		{"GPU memory", []Job{big(gj(1, 0, ""))}, gj(1, 0, ""), view(a100, 0xf, 1), -1},
		// Sharers of 0.5 pending; GPU 0 is 75% shared (25 left), GPU 1
		// whole. Before: 1.25 free, 1 usable: loses 0.25. Joining GPU 0
		// fills it: 1 free, 1 usable: loses 0.
		{"sharing: filling a shared GPU", []Job{gj(1, 0.5, "")}, gj(1, 0.25, ""), view(a100[:2], 0b10, 0b01, 75, 0), -0.25},
		// Taking GPU 1 instead leaves 25 and 75 free, 0.75 usable: loses
		// 0.25, as before.
		{"sharing: opening a whole GPU", []Job{gj(1, 0.5, "")}, gj(1, 0.25, ""), view(a100[:2], 0b10, 0b10, 75, 0), 0},
		// A whole-GPU shape cannot use a shared GPU's rest: 1.25 free, 1
		// usable, loses 0.25; after the sharer takes GPU 1 nothing whole
		// is left and it loses all 1.0.
		{"sharing: whole-GPU shape", []Job{gj(1, 0, "")}, gj(1, 0.25, ""), view(a100[:2], 0b10, 0b10, 75, 0), 0.75},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := queueShapes(tc.pending, nil)
			j, v := tc.job, tc.node
			if got := (GPUFragmentation{}).Cost(&j, &v, &q); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("cost %v, want %v", got, tc.want)
			}
		})
	}
}

// Shapes are counted per request, models and GPU memory included, most
// asked first, and weighted to sum to 1.
func TestQueueShapes(t *testing.T) {
	j := func(count int, model string) Job {
		return Job{PerNode: Request{CPUs: 8, Memory: gib, GPU: GPURequest{Count: count, Model: model}}}
	}
	q := queueShapes([]Job{j(1, ""), j(1, "L40S"), j(1, "l40s"), j(2, ""), {PerNode: Request{CPUs: 4}}}, nil)
	want := []struct {
		count  int
		model  string
		weight float64
	}{{1, "l40s", 0.5}, {1, "", 0.25}, {2, "", 0.25}}
	if len(q.GPUShapes) != len(want) {
		t.Fatalf("shapes %+v, want %+v", q.GPUShapes, want)
	}
	for i, w := range want {
		s := q.GPUShapes[i]
		if s.Count != w.count || s.Model != w.model || s.Weight != w.weight {
			t.Errorf("shape %d: %+v, want %+v", i, s, w)
		}
	}
}

// Running jobs count in the sample, one each, by what they hold on their
// first node (a sharer by its share, any model); shapes under 1% of the
// sample are dropped.
func TestQueueShapesCountRunning(t *testing.T) {
	pend := []Job{{PerNode: Request{CPUs: 8, Memory: gib, GPU: GPURequest{Count: 8, Model: "H100"}}}}
	run := func(gpus int, share float64, nodes int) Running {
		r := Running{}
		for range nodes {
			a := NodeAlloc{Node: "n", CPUs: []int{0, 1}, Memory: 2 * gib, GPUShare: share}
			for g := range gpus {
				a.GPUs = append(a.GPUs, g)
			}
			r.Nodes = append(r.Nodes, a)
		}
		return r
	}
	var running []Running
	for range 99 {
		running = append(running, run(1, 0.25, 1))
	}
	running = append(running, run(2, 0, 3), run(0, 0, 1), Running{})
	// 101 GPU jobs: 99 sharers, the pending 8-GPU job and a 3-node
	// 2-GPU gang (counted once); CPU-only and empty ones do not count.
	// 1/101 is under 1%: the two rare shapes go, the sharers stay.
	q := queueShapes(pend, running)
	if len(q.GPUShapes) != 1 {
		t.Fatalf("shapes %+v, want the sharers' only", q.GPUShapes)
	}
	if s := q.GPUShapes[0]; s.Count != 1 || s.Share != 25 || s.CPUs != 2 || s.Memory != 2*gib || s.Model != "" || s.Weight != 1 {
		t.Errorf("shape %+v, want 1 GPU at share 25, 2 CPUs, 2 GiB, any model, weight 1", s)
	}
	// With 49 sharers the other two are 2% each and stay.
	q = queueShapes(pend, append(running[:49:49], run(2, 0, 3)))
	want := map[int]float64{1: 49.0 / 51, 8: 1.0 / 51, 2: 1.0 / 51}
	if len(q.GPUShapes) != 3 {
		t.Fatalf("shapes %+v, want 3", q.GPUShapes)
	}
	for _, s := range q.GPUShapes {
		if math.Abs(s.Weight-want[s.Count]) > 1e-12 {
			t.Errorf("shape %+v: weight %v, want %v", s, s.Weight, want[s.Count])
		}
	}
}
