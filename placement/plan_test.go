package placement

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestPlanScenarios(t *testing.T) {
	easy := Policy{Depth: DepthEASY}
	fcfs := Policy{Depth: DepthFCFS}
	tests := []struct {
		name   string
		f      *fakeCluster
		p      Policy
		starts map[uint64][]string // job -> nodes
		waits  map[uint64]Reason
	}{
		{
			name:   "empty queue",
			f:      newFake().cpuNodes(2, 8, 32*gib),
			p:      easy,
			starts: map[uint64][]string{},
			waits:  map[uint64]Reason{},
		},
		{
			name: "best fit packs the fuller node",
			f: newFake().cpuNodes(2, 8, 32*gib).
				running(100, t0.Add(time.Hour), alloc("cpu001", 0, 6, 4*gib)).
				pending(job(1).cpus(2)),
			p:      easy,
			starts: map[uint64][]string{1: {"cpu001"}},
			waits:  map[uint64]Reason{},
		},
		{
			name: "cpu job keeps off gpu nodes",
			f: newFake().gpuNodes(1, "H100", 8, nvswitch).cpuNodes(1, 8, 32*gib).
				pending(job(1).cpus(4)),
			p:      easy,
			starts: map[uint64][]string{1: {"cpu000"}},
			waits:  map[uint64]Reason{},
		},
		{
			name: "cpu job takes a gpu node when no cpu node can",
			f: newFake().gpuNodes(1, "H100", 8, nvswitch).cpuNodes(1, 8, 32*gib).
				pending(job(1).cpus(16)),
			p:      easy,
			starts: map[uint64][]string{1: {"h100-000"}},
			waits:  map[uint64]Reason{},
		},
		{
			// 8-GPU jobs are part of the workload (one runs): the whole
			// node is worth keeping (GPUFragmentation).
			name: "small gpu job goes to the partly used node",
			f: newFake().gpuNodes(3, "H100", 8, nvswitch).
				running(100, t0.Add(time.Hour), alloc("h100-001", 0, 8, 64*gib, 0, 1, 2, 3)).
				running(101, t0.Add(time.Hour), alloc("h100-002", 0, 8, 64*gib, 0, 1, 2, 3, 4, 5, 6, 7)).
				pending(job(1).gpus(2, "h100")),
			p:      easy,
			starts: map[uint64][]string{1: {"h100-001"}},
			waits:  map[uint64]Reason{},
		},
		{
			// Only 4- and 2-GPU jobs in sight: the 4 free GPUs are
			// worth more to the 4-GPU shape than a whole node is.
			name: "small gpu job keeps a 4-GPU hole when no 8-GPU job is in sight",
			f: newFake().gpuNodes(2, "H100", 8, nvswitch).
				running(100, t0.Add(time.Hour), alloc("h100-001", 0, 8, 64*gib, 0, 1, 2, 3)).
				pending(job(1).gpus(2, "h100")),
			p:      easy,
			starts: map[uint64][]string{1: {"h100-000"}},
			waits:  map[uint64]Reason{},
		},
		{
			name: "gpu model decides",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				pending(job(1).gpus(4, "a100"), job(2).gpus(1, "H100"), job(3).gpus(1, "V100")),
			p:      easy,
			starts: map[uint64][]string{1: {"a100-000"}, 2: {"h100-000"}},
			waits:  map[uint64]Reason{3: ReasonGPUModel},
		},
		{
			name: "nvlink job waits rather than take a worse set",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).
				running(100, t0.Add(time.Hour), alloc("a100-000", 0, 1, gib, 0, 2)).
				pending(job(1).gpus(2, "A100").nvlink(), job(2).gpus(2, "A100")),
			p:      easy,
			starts: map[uint64][]string{2: {"a100-000"}},
			waits:  map[uint64]Reason{1: ReasonGPUTopology},
		},
		{
			name: "gang takes all nodes at once or none",
			f: newFake().cpuNodes(3, 8, 32*gib).
				running(100, t0.Add(time.Hour), alloc("cpu002", 0, 8, gib)).
				pending(job(1).nodes(3).cpus(8), job(2).nodes(2).cpus(8).wall(30*time.Minute)),
			p:      easy,
			starts: map[uint64][]string{2: {"cpu000", "cpu001"}},
			waits:  map[uint64]Reason{1: ReasonResources},
		},
		{
			name: "fcfs stops at the first blocked job",
			f: newFake().cpuNodes(1, 8, 32*gib).
				pending(job(1).cpus(4), job(2).cpus(8), job(3).cpus(1)),
			p:      fcfs,
			starts: map[uint64][]string{1: {"cpu000"}},
			waits:  map[uint64]Reason{2: ReasonResources, 3: ReasonPriority},
		},
		{
			name: "impossible jobs wait with a reason and block nothing",
			f: newFake().cpuNodes(2, 8, 32*gib, "ib").
				pending(job(1).cpus(64), job(2).feat("gpu"), job(3).nodes(3), job(4).cpus(2)),
			p:      fcfs,
			starts: map[uint64][]string{4: {"cpu000"}},
			waits:  map[uint64]Reason{1: ReasonTooLarge, 2: ReasonNoNodeWithFeature, 3: ReasonNodes},
		},
		{
			name: "draining and down nodes take nothing",
			f: newFake().cpuNodes(3, 8, 32*gib).state("cpu000", NodeDraining).state("cpu001", NodeDown).
				pending(job(1).cpus(8), job(2).cpus(8)),
			p:      easy,
			starts: map[uint64][]string{1: {"cpu002"}},
			waits:  map[uint64]Reason{2: ReasonResources},
		},
		{
			name: "priority then submit then id",
			f: newFake().cpuNodes(1, 4, 32*gib).
				pending(job(1).cpus(4), job(2).cpus(4).prio(200), job(3).cpus(4).prio(200).at(t0)),
			p:      fcfs,
			starts: map[uint64][]string{3: {"cpu000"}},
			waits:  map[uint64]Reason{2: ReasonResources, 1: ReasonPriority},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Plan(tc.f.snapshot(), t0, tc.p)
			got := map[uint64][]string{}
			for _, s := range d.Starts {
				got[s.JobID] = nodesOf(s)
			}
			if !reflect.DeepEqual(got, tc.starts) {
				t.Errorf("starts = %v, want %v", got, tc.starts)
			}
			gw := map[uint64]Reason{}
			for _, w := range d.Waiting {
				gw[w.JobID] = w.Reason
			}
			if !reflect.DeepEqual(gw, tc.waits) {
				t.Errorf("waits = %v, want %v (%+v)", gw, tc.waits, d.Waiting)
			}
			checkNoOverlap(t, tc.f.snapshot(), d)
		})
	}
}

// checkNoOverlap verifies the decisions never hand out a cpu, GPU or byte
// twice, counting what already runs, and never use a node that is not up.
func checkNoOverlap(t *testing.T, s Snapshot, d Decisions) {
	t.Helper()
	type res struct {
		cpus map[int]bool
		gpus map[int]bool
		mem  int64
	}
	byName := map[string]*Node{}
	for i := range s.Nodes {
		byName[s.Nodes[i].Name] = &s.Nodes[i]
	}
	used := map[string]*res{}
	take := func(a NodeAlloc, check bool) {
		r := used[a.Node]
		if r == nil {
			r = &res{cpus: map[int]bool{}, gpus: map[int]bool{}}
			used[a.Node] = r
		}
		n := byName[a.Node]
		for _, c := range a.CPUs {
			if check && r.cpus[c] {
				t.Errorf("cpu %d of %s given twice", c, a.Node)
			}
			if check && (c < 0 || (n.CPUIDs == nil && c >= n.CPUs) || (n.CPUIDs != nil && !slices.Contains(n.CPUIDs, c))) {
				t.Errorf("cpu %d is not on %s", c, a.Node)
			}
			r.cpus[c] = true
		}
		for _, g := range a.GPUs {
			if check && r.gpus[g] {
				t.Errorf("gpu %d of %s given twice", g, a.Node)
			}
			r.gpus[g] = true
		}
		r.mem += a.Memory
		if check && r.mem > n.Memory {
			t.Errorf("memory of %s over-allocated: %d > %d", a.Node, r.mem, n.Memory)
		}
	}
	for _, r := range s.Running {
		for _, a := range r.Nodes {
			take(a, false)
		}
	}
	for _, st := range d.Starts {
		for _, a := range st.Nodes {
			n := byName[a.Node]
			if n == nil || n.State != NodeUp {
				t.Errorf("job %d placed on %s which is not up", st.JobID, a.Node)
				continue
			}
			take(a, true)
		}
	}
}
