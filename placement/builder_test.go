package placement

import (
	"fmt"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// A fake-cluster builder for tests:
//
//	s := newFake().cpuNodes(4, 32, 128*gib).gpuNodes(2, "H100", 8, nvswitch).
//		running(1, t0.Add(time.Hour), alloc("cpu000", 0, 1)).
//		pending(job(7).cpus(4).mem(8*gib)).snapshot()

const gib = int64(1) << 30

var t0 = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

// Topologies by name, from the resources fixtures.
var (
	nvswitch  = resources.NVSwitchLinks
	nvpairs   = resources.NVLinkPairsLinks
	pcie      = resources.PCIeLinks
	twoSocket = resources.TwoSocketLinks
)

type fakeCluster struct {
	nodes []Node
	run   []Running
	jobs  []Job
	seq   map[string]int
}

func newFake() *fakeCluster { return &fakeCluster{seq: map[string]int{}} }

func (f *fakeCluster) name(prefix string) string {
	i := f.seq[prefix]
	f.seq[prefix]++
	return fmt.Sprintf("%s%03d", prefix, i)
}

// cpuNodes adds n CPU-only nodes named cpu000, cpu001, ...
func (f *fakeCluster) cpuNodes(n, cpus int, mem int64, features ...string) *fakeCluster {
	for range n {
		f.nodes = append(f.nodes, Node{Name: f.name("cpu"), CPUs: cpus, Memory: mem, Features: features})
	}
	return f
}

// gpuNodes adds n nodes with g GPUs of model (80 GiB each), 64 CPUs and
// 1 TiB, linked by topo; named after the model: h100-000, ...
func (f *fakeCluster) gpuNodes(n int, model string, g int, topo func(int) [][]resources.Link, features ...string) *fakeCluster {
	for range n {
		nd := Node{Name: f.name(strings.ToLower(model) + "-"), CPUs: 64, Memory: 1024 * gib, Features: features, Links: topo(g)}
		for i := range g {
			nd.GPUs = append(nd.GPUs, GPU{ID: i, Model: "NVIDIA " + model + " 80GB", Memory: 80 * gib})
		}
		f.nodes = append(f.nodes, nd)
	}
	return f
}

// state sets a node's state.
func (f *fakeCluster) state(name string, s NodeState) *fakeCluster {
	for i := range f.nodes {
		if f.nodes[i].Name == name {
			f.nodes[i].State = s
		}
	}
	return f
}

// running adds a running job ending at end.
func (f *fakeCluster) running(id uint64, end time.Time, allocs ...NodeAlloc) *fakeCluster {
	f.run = append(f.run, Running{JobID: id, End: end, Nodes: allocs})
	return f
}

// alloc is a running share: cpus ids [lo, hi), gpus listed.
func alloc(node string, lo, hi int, mem int64, gpus ...int) NodeAlloc {
	a := NodeAlloc{Node: node, Memory: mem, GPUs: gpus}
	for i := lo; i < hi; i++ {
		a.CPUs = append(a.CPUs, i)
	}
	return a
}

func (f *fakeCluster) pending(js ...*jobB) *fakeCluster {
	for _, j := range js {
		f.jobs = append(f.jobs, j.Job)
	}
	return f
}

func (f *fakeCluster) snapshot() Snapshot {
	return Snapshot{Nodes: f.nodes, Running: f.run, Pending: f.jobs}
}

// jobB builds a pending job: one CPU, 1 GiB, one node, one hour, priority
// 100, submitted at t0 plus its id in seconds unless told otherwise.
type jobB struct{ Job }

func job(id uint64) *jobB {
	return &jobB{Job{ID: id, Priority: 100, Submit: t0.Add(time.Duration(id) * time.Second), Nodes: 1,
		PerNode: Request{CPUs: 1, Memory: gib}, Walltime: time.Hour}}
}
func (j *jobB) cpus(n int) *jobB           { j.PerNode.CPUs = n; return j }
func (j *jobB) mem(m int64) *jobB          { j.PerNode.Memory = m; return j }
func (j *jobB) nodes(n int) *jobB          { j.Nodes = n; return j }
func (j *jobB) wall(d time.Duration) *jobB { j.Walltime = d; return j }
func (j *jobB) prio(p int) *jobB           { j.Priority = p; return j }
func (j *jobB) at(t time.Time) *jobB       { j.Submit = t; return j }
func (j *jobB) feat(fs ...string) *jobB    { j.Features = fs; return j }
func (j *jobB) gpus(n int, model string) *jobB {
	j.PerNode.GPU.Count, j.PerNode.GPU.Model = n, model
	return j
}
func (j *jobB) nvlink() *jobB        { j.PerNode.GPU.NVLink = true; return j }
func (j *jobB) gpuMem(m int64) *jobB { j.PerNode.GPU.MinMemory = m; return j }

// started finds the start of job id in d.
func started(d Decisions, id uint64) (Start, bool) {
	for _, s := range d.Starts {
		if s.JobID == id {
			return s, true
		}
	}
	return Start{}, false
}

// waiting finds the wait of job id in d.
func waiting(d Decisions, id uint64) (Wait, bool) {
	for _, w := range d.Waiting {
		if w.JobID == id {
			return w, true
		}
	}
	return Wait{}, false
}

// nodesOf lists the node names of a start.
func nodesOf(s Start) []string {
	var out []string
	for _, a := range s.Nodes {
		out = append(out, a.Node)
	}
	return out
}
