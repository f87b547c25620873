package placement

import (
	"slices"
	"testing"
	"time"
)

// TestGPUSharing: sharing jobs pack onto one GPU up to a whole share,
// never onto a GPU held whole, and get their share in the allocation; a
// whole-GPU job never lands on a shared GPU; both kinds mix on one node.
func TestGPUSharing(t *testing.T) {
	node := Node{Name: "g1", CPUs: 16, Memory: 64 << 30, GPUs: []GPU{
		{ID: 0, Model: "A100", Memory: 40 << 30}, {ID: 1, Model: "A100", Memory: 40 << 30}, {ID: 2, Model: "A100", Memory: 40 << 30}}}
	share := func(id uint64, s float64) Job {
		return Job{ID: id, Submit: t0, Walltime: time.Hour, PerNode: Request{CPUs: 1, GPU: GPURequest{Count: 1, Share: s}}}
	}
	s := Snapshot{
		Nodes: []Node{node},
		Running: []Running{
			{JobID: 100, End: t0.Add(time.Hour), Nodes: []NodeAlloc{{Node: "g1", CPUs: []int{0}, GPUs: []int{0}}}},
			{JobID: 101, End: t0.Add(time.Hour), Nodes: []NodeAlloc{{Node: "g1", CPUs: []int{1}, GPUs: []int{2}, GPUShare: 0.5}}},
		},
		Pending: []Job{share(1, 0.4), share(2, 0.25), share(3, 0.5),
			{ID: 4, Submit: t0, Walltime: time.Hour, PerNode: Request{CPUs: 1, GPU: GPURequest{Count: 1}}},
			{ID: 5, Submit: t0, Walltime: time.Hour, PerNode: Request{CPUs: 1, GPU: GPURequest{Count: 1}}}},
	}
	for _, depth := range []int{DepthFCFS, DepthEASY, DepthAll} {
		d := Plan(s, t0, Policy{Depth: depth})
		got := map[uint64]NodeAlloc{}
		for _, st := range d.Starts {
			got[st.JobID] = st.Nodes[0]
		}
		// 0.4 joins GPU 2 (0.5 used: best fit), 0.25 too is too much
		// there (0.9 + 0.25), so it opens GPU 1, where 0.5 joins it;
		// no whole GPU is left for jobs 4 and 5.
		want := map[uint64]struct {
			gpu   int
			share float64
		}{1: {2, 0.4}, 2: {1, 0.25}, 3: {1, 0.5}}
		for id, w := range want {
			a, ok := got[id]
			if !ok || len(a.GPUs) != 1 || a.GPUs[0] != w.gpu || a.GPUShare != w.share {
				t.Errorf("depth %d job %d: got %+v, want GPU %d share %v", depth, id, a, w.gpu, w.share)
			}
		}
		if _, ok := got[4]; ok {
			t.Errorf("depth %d: whole-GPU job 4 started on %+v, every GPU is held or shared", depth, got[4])
		}
	}
	// With GPU 1 free and nothing shared on it, the whole job takes it
	// and the sharer goes to GPU 2 beside job 101.
	s.Pending = []Job{s.Pending[3], share(6, 0.5)}
	d := Plan(s, t0, Policy{Depth: DepthEASY})
	if len(d.Starts) != 2 {
		t.Fatalf("starts %+v, want both", d.Starts)
	}
	for _, st := range d.Starts {
		a := st.Nodes[0]
		if st.JobID == 4 && (a.GPUs[0] != 1 || a.GPUShare != 0) || st.JobID == 6 && (a.GPUs[0] != 2 || a.GPUShare != 0.5) {
			t.Errorf("job %d got %+v", st.JobID, a)
		}
	}
}

func TestGPUModelAlternatives(t *testing.T) {
	nodes := []Node{
		{Name: "a", CPUs: 8, Memory: 1 << 30, GPUs: []GPU{{ID: 0, Model: "NVIDIA A100-SXM4-40GB"}}},
		{Name: "h", CPUs: 8, Memory: 1 << 30, GPUs: []GPU{{ID: 0, Model: "NVIDIA H100 80GB HBM3"}}},
		{Name: "l", CPUs: 8, Memory: 1 << 30, GPUs: []GPU{{ID: 0, Model: "NVIDIA L40S"}}},
	}
	for _, c := range []struct {
		model string
		want  []string
	}{
		{"V100|A100", []string{"a"}},
		{"h100 | l40s", []string{"h", "l"}},
		{"", []string{"a", "h", "l"}},
		{"V100|P100", nil},
	} {
		var pend []Job
		for i := range 3 {
			pend = append(pend, Job{ID: uint64(i + 1), Submit: t0, Walltime: time.Hour, PerNode: Request{CPUs: 1, GPU: GPURequest{Count: 1, Model: c.model}}})
		}
		d := Plan(Snapshot{Nodes: nodes, Pending: pend}, t0, Policy{Depth: DepthEASY})
		var got []string
		for _, st := range d.Starts {
			got = append(got, st.Nodes[0].Node)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("model %q: started on %v, want %v", c.model, got, c.want)
		}
	}
}

// TestNUMALocality: a GPU job's CPUs come from its GPUs' NUMA node first,
// then from the other; without a layout, the lowest ids as before.
func TestNUMALocality(t *testing.T) {
	node := Node{Name: "g", CPUs: 8, Memory: 1 << 30, NUMA: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}},
		GPUs: []GPU{{ID: 0, Model: "A100", NUMA: 0}, {ID: 1, Model: "A100", NUMA: 1}}}
	running := []Running{{JobID: 9, End: t0.Add(time.Hour), Nodes: []NodeAlloc{{Node: "g", CPUs: []int{0, 4}, GPUs: []int{0}}}}}
	job := func(cpus int) Job {
		return Job{ID: 1, Submit: t0, Walltime: time.Hour, PerNode: Request{CPUs: cpus, GPU: GPURequest{Count: 1}}}
	}
	cases := []struct {
		name  string
		node  Node
		cpus  int
		wantC []int
	}{
		{"on the GPU's node", node, 2, []int{5, 6}},
		{"spills to the other node", node, 5, []int{1, 5, 6, 7, 2}},
		{"no layout: lowest ids", Node{Name: "g", CPUs: 8, Memory: 1 << 30, GPUs: node.GPUs}, 2, []int{1, 2}},
	}
	for _, c := range cases {
		for _, depth := range []int{DepthEASY, DepthAll} {
			d := Plan(Snapshot{Nodes: []Node{c.node}, Running: running, Pending: []Job{job(c.cpus)}}, t0, Policy{Depth: depth})
			if len(d.Starts) != 1 {
				t.Fatalf("%s: %+v", c.name, d)
			}
			a := d.Starts[0].Nodes[0]
			want := slices.Sorted(slices.Values(c.wantC))
			if len(a.GPUs) != 1 || a.GPUs[0] != 1 || !slices.Equal(a.CPUs, want) {
				t.Errorf("%s: GPUs %v CPUs %v, want GPU 1 and CPUs %v", c.name, a.GPUs, a.CPUs, want)
			}
		}
	}
}
