package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// stateCluster is a small heterogeneous cluster for the kept-state test:
// CPU nodes (some with a NUMA layout and explicit cpu ids), 8-GPU NVSwitch
// and 4-GPU NVLink-pair nodes with GPUs on NUMA nodes, of two models.
func stateCluster(r *rand.Rand, n int) []Node {
	nodes := make([]Node, 0, n)
	for i := range n {
		var nd Node
		switch i % 5 {
		case 0, 1:
			nd = Node{Name: fmt.Sprintf("cpu%03d", i), CPUs: 16, Memory: 64 * gib}
			if i%2 == 0 {
				nd.Features = []string{"ib"}
			}
		case 2:
			nd = Node{Name: fmt.Sprintf("numa%03d", i), CPUIDs: []int{0, 1, 2, 3, 8, 9, 10, 11}, Memory: 32 * gib,
				NUMA: [][]int{{0, 1, 2, 3}, {8, 9, 10, 11}}}
		case 3:
			nd = Node{Name: fmt.Sprintf("h100-%03d", i), CPUs: 32, Memory: 512 * gib, Links: nvswitch(8), NUMA: [][]int{
				{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}}}
			for g := range 8 {
				nd.GPUs = append(nd.GPUs, GPU{ID: g, Model: "NVIDIA H100 80GB HBM3", Memory: 80 * gib, NUMA: g / 4})
			}
		default:
			nd = Node{Name: fmt.Sprintf("a100-%03d", i), CPUs: 16, Memory: 256 * gib, Links: nvpairs(4)}
			for g := range 4 {
				nd.GPUs = append(nd.GPUs, GPU{ID: g, Model: "NVIDIA A100-SXM4-40GB", Memory: 40 * gib})
			}
		}
		if r.IntN(8) == 0 {
			nd.State = NodeState(1 + r.IntN(2))
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

// stateJob is a random pending job: CPU, whole-GPU (some NVLink, some of
// one model), GPU-sharing, gangs.
func stateJob(r *rand.Rand, id uint64, now time.Time) Job {
	j := Job{ID: id, Priority: 100 + 100*r.IntN(3), Submit: now.Add(-time.Duration(r.IntN(3600)) * time.Second),
		Nodes: 1, Walltime: time.Duration(1+r.IntN(120)) * time.Minute}
	switch x := r.IntN(10); {
	case x < 4:
		j.PerNode = Request{CPUs: 1 + r.IntN(8), Memory: int64(1+r.IntN(16)) * gib}
		if r.IntN(4) == 0 {
			j.Features = []string{"ib"}
		}
		if r.IntN(5) == 0 {
			j.Nodes = 2 + r.IntN(4)
		}
	case x < 7:
		g := 1 << r.IntN(3)
		j.PerNode = Request{CPUs: 2 * g, Memory: int64(g) * 8 * gib, GPU: GPURequest{Count: g, Model: []string{"", "H100", "A100|H100"}[r.IntN(3)]}}
		j.PerNode.GPU.NVLink = g > 1 && r.IntN(3) == 0
		if r.IntN(6) == 0 {
			j.Nodes = 2
		}
	default:
		j.PerNode = Request{CPUs: 1 + r.IntN(2), Memory: 4 * gib, GPU: GPURequest{Count: 1, Share: []float64{0.25, 0.5, 0.3}[r.IntN(3)]}}
	}
	if r.IntN(10) == 0 {
		j.Walltime = 0 // no walltime: holds its resources for ever
	}
	return j
}

// TestStateMatchesRebuild drives a kept State through random event
// sequences (starts it decided, jobs ending, early and overdue, nodes
// draining, going down, coming back, changing shape, appearing and
// disappearing, preemptible jobs) and checks after every event that its
// Plan decides exactly what Plan decides on a snapshot of the same
// cluster built from scratch, under every policy, and that a pass leaves
// the state as it found it (a second pass decides the same again). A
// second State kept by Sync from the whole lists must decide the same.
func TestStateMatchesRebuild(t *testing.T) {
	pols := append(slices.Clone(allPolicies), Policy{Depth: DepthEASY, Scorers: []Scorer{Packing{}}})
	for seed := range uint64(45) {
		r := rand.New(rand.NewPCG(seed, 11))
		// Seeds from 30 on: a machine of identical single-CPU nodes and
		// gangs of one CPU per node, as SWF replays (the exclusive fast
		// path of conservative backfill, excl.go).
		uniform := seed >= 30
		var nodes []Node
		if uniform {
			for i := range 10 + r.IntN(30) {
				nodes = append(nodes, Node{Name: fmt.Sprintf("n%03d", i), CPUs: 1, Memory: gib})
			}
		} else {
			nodes = stateCluster(r, 8+r.IntN(25))
		}
		st := NewState(nodes, nil)
		// synced is told the same cluster as whole lists each step, in
		// shuffled order, as the daemon does (Sync).
		synced := NewState(nil, nil)
		now := t0
		var pending []Job
		nextID := uint64(1)
		for step := range 60 {
			for range r.IntN(4) {
				j := stateJob(r, nextID, now)
				if uniform {
					j.Nodes, j.PerNode, j.Features = 1+r.IntN(6), Request{CPUs: 1}, nil
				}
				pending = append(pending, j)
				nextID++
			}
			p := pols[(int(seed)+step)%len(pols)]
			got := st.Plan(pending, now, p)
			snap := Snapshot{Nodes: slices.Clone(st.Nodes()), Running: slices.Clone(st.Running()), Pending: pending}
			want := Plan(snap, now, p)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d policy %d: kept state and rebuild differ: %s", seed, step, (int(seed)+step)%len(pols), firstDiff(got, want))
			}
			sn, sr := slices.Clone(snap.Nodes), slices.Clone(snap.Running)
			r.Shuffle(len(sn), func(a, b int) { sn[a], sn[b] = sn[b], sn[a] })
			r.Shuffle(len(sr), func(a, b int) { sr[a], sr[b] = sr[b], sr[a] })
			synced.Sync(sn, sr)
			if viaSync := synced.Plan(pending, now, p); !reflect.DeepEqual(viaSync, want) {
				t.Fatalf("seed %d step %d: state kept by Sync and rebuild differ: %s", seed, step, firstDiff(viaSync, want))
			}
			if again := st.Plan(pending, now, p); !reflect.DeepEqual(again, got) {
				t.Fatalf("seed %d step %d: a second pass on the same state differs: %s", seed, step, firstDiff(again, got))
			}
			// Act on most starts, as the daemon would.
			started := map[uint64]bool{}
			for _, s := range got.Starts {
				if r.IntN(8) == 0 {
					continue // the start failed: the job stays pending
				}
				started[s.JobID] = true
				run := Running{JobID: s.JobID, Nodes: s.Nodes, Since: now, Priority: r.IntN(300), Preemptible: r.IntN(3) == 0}
				for _, j := range pending {
					if j.ID == s.JobID && j.Walltime > 0 {
						run.End = now.Add(j.Walltime)
					}
				}
				st.Start(run)
			}
			pending = slices.DeleteFunc(pending, func(j Job) bool { return started[j.ID] })
			now = now.Add(time.Duration(1+r.IntN(40)) * time.Minute)
			// Some jobs end (early, on time, or are found overdue later).
			for _, run := range slices.Clone(st.Running()) {
				if !run.End.IsZero() && run.End.Before(now) && r.IntN(3) > 0 || r.IntN(12) == 0 {
					st.End(run.JobID)
				}
			}
			if !uniform || r.IntN(4) == 0 {
				stateNodeEvent(r, st, &nodes)
			}
			if r.IntN(10) == 0 {
				// Time goes back a little, as a wall clock may.
				now = now.Add(-time.Duration(r.IntN(30)) * time.Minute)
			}
		}
	}
}

// stateNodeEvent changes one node now and then: its state, its shape, or
// whether it exists; or restarts a running job as being stopped.
func stateNodeEvent(r *rand.Rand, st *State, nodes *[]Node) {
	ns := *nodes
	i := r.IntN(len(ns))
	switch r.IntN(12) {
	case 0, 1, 2:
		ns[i].State = NodeState(r.IntN(3))
		st.SetNode(ns[i])
	case 3:
		ns[i].Memory += gib * int64(1+r.IntN(4))
		st.SetNode(ns[i])
	case 4:
		if len(ns) > 4 {
			st.RemoveNode(ns[i].Name)
			*nodes = slices.Delete(ns, i, i+1)
		}
	case 5:
		nd := Node{Name: fmt.Sprintf("new%03d", r.IntN(1000)), CPUs: 8, Memory: 32 * gib}
		if !slices.ContainsFunc(ns, func(n Node) bool { return n.Name == nd.Name }) {
			*nodes = append(ns, nd)
			st.SetNode(nd)
		}
	case 6:
		if rs := st.Running(); len(rs) > 0 {
			run := rs[r.IntN(len(rs))]
			run.Stopping, run.Preemptible = r.IntN(2) == 0, !run.Preemptible
			run.Nodes = slices.Clone(run.Nodes)
			st.Start(run) // replaces the job, as a status change
		}
	}
}
