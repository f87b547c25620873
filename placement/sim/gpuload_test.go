package sim

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
)

// refGPUPlan is a strict-FCFS first-fit placer for general nodes, for
// these tests only: the first nodes in name order with enough free CPUs,
// memory and GPUs, and on each the lowest free GPU ids (for link =
// "nvlink" the first all-NVLink set in id order).
func refGPUPlan(s placement.Snapshot, _ time.Time, _ placement.Policy) placement.Decisions {
	type free struct {
		cpus []int
		mem  int64
		gpus []int
	}
	nodes := slices.Clone(s.Nodes)
	slices.SortFunc(nodes, func(a, b placement.Node) int { return strings.Compare(a.Name, b.Name) })
	fr := map[string]*free{}
	for _, n := range nodes {
		f := &free{mem: n.Memory}
		for c := 0; c < n.CPUs; c++ {
			f.cpus = append(f.cpus, c)
		}
		for _, g := range n.GPUs {
			f.gpus = append(f.gpus, g.ID)
		}
		fr[n.Name] = f
	}
	take := func(a placement.NodeAlloc) {
		f := fr[a.Node]
		f.mem -= a.Memory
		f.cpus = slices.DeleteFunc(f.cpus, func(c int) bool { return slices.Contains(a.CPUs, c) })
		f.gpus = slices.DeleteFunc(f.gpus, func(g int) bool { return slices.Contains(a.GPUs, g) })
	}
	for _, r := range s.Running {
		for _, a := range r.Nodes {
			take(a)
		}
	}
	queue := slices.Clone(s.Pending)
	slices.SortStableFunc(queue, func(a, b placement.Job) int {
		if c := a.Submit.Compare(b.Submit); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var d placement.Decisions
	for qi, j := range queue {
		var allocs []placement.NodeAlloc
		for ni := range nodes {
			n := &nodes[ni]
			f := fr[n.Name]
			if len(allocs) == max(j.Nodes, 1) {
				break
			}
			if len(f.cpus) < j.PerNode.CPUs || f.mem < j.PerNode.Memory {
				continue
			}
			gpus, ok := firstGPUs(n, f.gpus, j.PerNode.GPU)
			if !ok {
				continue
			}
			allocs = append(allocs, placement.NodeAlloc{Node: n.Name, CPUs: slices.Clone(f.cpus[:j.PerNode.CPUs]), Memory: j.PerNode.Memory, GPUs: gpus})
		}
		if len(allocs) < max(j.Nodes, 1) {
			for _, w := range queue[qi:] {
				d.Waiting = append(d.Waiting, placement.Wait{JobID: w.ID, Reason: placement.ReasonResources})
			}
			return d
		}
		for _, a := range allocs {
			take(a)
		}
		d.Starts = append(d.Starts, placement.Start{JobID: j.ID, Nodes: allocs})
	}
	return d
}

// firstGPUs picks the first fitting set of free GPUs in id order.
func firstGPUs(n *placement.Node, free []int, req placement.GPURequest) ([]int, bool) {
	var cand []int
	for _, id := range free {
		g := n.GPUs[slices.IndexFunc(n.GPUs, func(g placement.GPU) bool { return g.ID == id })]
		if g.Memory >= req.MinMemory {
			cand = append(cand, id)
		}
	}
	if len(cand) < req.Count {
		return nil, false
	}
	if !req.NVLink || req.Count < 2 {
		return slices.Clone(cand[:req.Count]), true
	}
	for m := uint64(0); m < 1<<len(cand); m++ {
		var set []int
		for i := range cand {
			if m&(1<<i) != 0 {
				set = append(set, cand[i])
			}
		}
		if len(set) == req.Count && setQualityOf(n, set).min == resources.LinkNVLink {
			return set, true
		}
	}
	return nil, false
}

func TestGenerateGPUWorkloadDeterministic(t *testing.T) {
	o := GPUWorkloadOptions{Seed: 7, Jobs: 500}
	n1, j1 := GenerateGPUWorkload(o)
	n2, j2 := GenerateGPUWorkload(o)
	if !slices.EqualFunc(j1, j2, func(a, b Job) bool {
		return a.Run == b.Run && a.Submit.Equal(b.Submit) && a.PerNode == b.PerNode && a.Nodes == b.Nodes
	}) || len(n1) != len(n2) {
		t.Fatal("same seed, different workloads")
	}
	_, j3 := GenerateGPUWorkload(GPUWorkloadOptions{Seed: 8, Jobs: 500})
	if slices.EqualFunc(j1, j3, func(a, b Job) bool { return a.Run == b.Run }) {
		t.Fatal("different seeds, same workload")
	}
	if len(n1) != 16+8+8+4 || len(j1) != 500 {
		t.Fatalf("%d nodes, %d jobs", len(n1), len(j1))
	}
	// Every class of the mix is present and every job fits some node.
	classes := map[string]int{}
	for _, j := range j1 {
		g := j.PerNode.GPU
		switch {
		case g.Count == 0:
			classes["cpu"]++
		case j.Nodes > 1:
			classes["multi-node-gpu"]++
		case g.NVLink:
			classes["nvlink"]++
		default:
			classes[[]string{"", "1gpu", "2gpu", "", "4gpu", "", "", "", "8gpu"}[g.Count]]++
		}
		if j.Run <= 0 || j.Run > j.Walltime || j.Walltime%(15*time.Minute) != 0 {
			t.Errorf("job %d: run %v walltime %v", j.ID, j.Run, j.Walltime)
		}
		if d := refGPUPlan(placement.Snapshot{Nodes: n1, Pending: []placement.Job{j.Job}}, Epoch, placement.Policy{}); len(d.Starts) != 1 {
			t.Errorf("job %d does not fit the empty cluster: %+v", j.ID, j)
		}
	}
	for _, c := range []string{"cpu", "1gpu", "2gpu", "4gpu", "8gpu", "nvlink", "multi-node-gpu"} {
		if classes[c] == 0 {
			t.Errorf("no %s jobs in %v", c, classes)
		}
	}
}

func TestBestOnEmpty(t *testing.T) {
	h100, a100, l40s := h100Type.node(0), a100Type.node(0), l40sType.node(0)
	cases := []struct {
		name string
		node *placement.Node
		set  []int
		best bool
	}{
		{"nvswitch-any-pair", &h100, []int{0, 7}, true},
		{"nvswitch-any-four", &h100, []int{1, 3, 5, 6}, true},
		{"pairs-bridged", &a100, []int{2, 3}, true},
		{"pairs-split", &a100, []int{1, 2}, false},
		{"pairs-all-four", &a100, []int{0, 1, 2, 3}, true},
		{"two-socket-same", &l40s, []int{4, 5, 6, 7}, true},
		{"two-socket-across", &l40s, []int{2, 3, 4, 5}, false},
		{"two-socket-pair-across", &l40s, []int{3, 4}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := setQualityOf(c.node, c.set) == bestOnEmpty(c.node, len(c.set)); got != c.best {
				t.Errorf("set %v on best: %v, want %v", c.set, got, c.best)
			}
		})
	}
}

// With the first-fit reference placer the replay runs to the end and the
// figures are sane; the share on the best interconnect is below 1, as
// lowest-id GPU sets split NVLink pairs and sockets.
func TestSimulateGPUWorkloadReference(t *testing.T) {
	r, err := SimulateGPUWorkload(GPUWorkloadOptions{Seed: 1, Jobs: 300}, placement.Policy{Depth: placement.DepthFCFS}, refGPUPlan)
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 300 || r.MultiGPUJobs == 0 || r.GPUUtilization <= 0 || r.GPUUtilization > 1 || r.Utilization <= 0 || r.Utilization > 1 {
		t.Errorf("implausible result %+v", r)
	}
	if r.BestLinkShare <= 0 || r.BestLinkShare > 1 || math.IsNaN(r.AvgBoundedSlowdown) || r.AvgBoundedSlowdown < 1 {
		t.Errorf("implausible result %+v", r)
	}
	t.Logf("%+v", r)
}

// The placer, scoring or first fit, runs the GPU workload to the end with
// every decision audited by the replay.
func TestSimulateGPUWorkloadPlan(t *testing.T) {
	for _, ff := range []bool{false, true} {
		t.Run(map[bool]string{false: "scoring", true: "first-fit"}[ff], func(t *testing.T) {
			pol := placement.Policy{Depth: placement.DepthEASY}
			if ff {
				pol.Scorers = placement.FirstFitScorers()
			}
			r, err := SimulateGPUWorkload(GPUWorkloadOptions{Seed: 2, Jobs: 300}, pol, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Jobs != 300 || r.BestLinkShare <= 0 || r.GPUUtilization <= 0 {
				t.Errorf("implausible result %+v", r)
			}
		})
	}
}

// TestGPUWorkloadSharingAndModels: the sharing and model options change
// only the jobs they pick, and the replay of such a mix keeps every
// share within its GPU (the ledger checks it).
func TestGPUWorkloadSharingAndModels(t *testing.T) {
	o := GPUWorkloadOptions{Seed: 4, Jobs: 400}
	_, plain := GenerateGPUWorkload(o)
	o.ShareJobs, o.ModelJobs = 0.5, 0.3
	_, mixed := GenerateGPUWorkload(o)
	shares, models := 0, 0
	for i := range plain {
		if plain[i].Run != mixed[i].Run || plain[i].Nodes != mixed[i].Nodes || plain[i].PerNode.GPU.Count != mixed[i].PerNode.GPU.Count {
			t.Fatalf("job %d changed beyond its share or model: %+v vs %+v", i, plain[i], mixed[i])
		}
		if mixed[i].PerNode.GPU.Share > 0 {
			shares++
		}
		if mixed[i].PerNode.GPU.Model != "" {
			models++
		}
	}
	if shares < 20 || models < 20 {
		t.Fatalf("%d sharing and %d model-constrained jobs of 400", shares, models)
	}
	r, err := SimulateGPUWorkload(o, placement.Policy{Depth: placement.DepthEASY}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 400 || r.FragMean <= 0 || len(r.FragCurve) != 20 {
		t.Errorf("result %+v", r)
	}
}
