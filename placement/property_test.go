package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomSnapshot is a small random cluster and queue: some nodes draining
// or down, running jobs ending at random times, a mixed queue.
func randomSnapshot(seed uint64) Snapshot {
	r := rand.New(rand.NewPCG(seed, 7))
	nodes, run := synthCluster(r, 10+r.IntN(40), 0.5, t0)
	for i := range nodes {
		switch r.IntN(10) {
		case 0:
			nodes[i].State = NodeDraining
		case 1:
			nodes[i].State = NodeDown
		}
	}
	jobs := synthQueue(r, 20+r.IntN(80), t0)
	for i := range jobs {
		if jobs[i].Nodes > 3 {
			jobs[i].Nodes = 1 + r.IntN(3)
		}
	}
	return Snapshot{Nodes: nodes, Running: run, Pending: jobs}
}

var allPolicies = []Policy{
	{Depth: DepthFCFS}, {Depth: DepthEASY}, {Depth: DepthAll}, {Depth: 3},
	{Depth: DepthEASY, Scorers: FirstFitScorers()}, {Depth: DepthEASY, Scorers: BestFitScorers()},
	{Depth: DepthEASY, Filters: []Filter{acceptAll{}}}, {Depth: DepthEASY, Weights: PriorityWeights{Priority: 1000, Age: 1680, AgeMax: 168 * time.Hour}},
}

func TestPropertyNoOverAllocation(t *testing.T) {
	for seed := range uint64(40) {
		s := randomSnapshot(seed)
		for _, p := range allPolicies {
			d := Plan(s, t0, p)
			checkNoOverlap(t, s, d)
			if len(d.Starts)+len(d.Waiting) != len(s.Pending) {
				t.Fatalf("seed %d %+v: %d starts + %d waits for %d jobs", seed, p, len(d.Starts), len(d.Waiting), len(s.Pending))
			}
			for _, st := range d.Starts {
				j := jobByID(s, st.JobID)
				if len(st.Nodes) != gangSize(&j) {
					t.Errorf("job %d: %d nodes, want %d", j.ID, len(st.Nodes), gangSize(&j))
				}
				for _, a := range st.Nodes {
					if len(a.CPUs) != j.PerNode.CPUs || len(a.GPUs) != j.PerNode.GPU.Count || a.Memory != j.PerNode.Memory {
						t.Errorf("job %d on %s got %d cpus %d gpus, asked %+v", j.ID, a.Node, len(a.CPUs), len(a.GPUs), j.PerNode)
					}
				}
			}
		}
	}
}

func jobByID(s Snapshot, id uint64) Job {
	for _, j := range s.Pending {
		if j.ID == id {
			return j
		}
	}
	panic(fmt.Sprint("no job ", id))
}

func TestPropertyShuffleAndDeterminism(t *testing.T) {
	for seed := range uint64(30) {
		s := randomSnapshot(seed)
		r := rand.New(rand.NewPCG(seed, 99))
		for _, p := range allPolicies {
			want := Plan(s, t0, p)
			if again := Plan(s, t0, p); !reflect.DeepEqual(want, again) {
				t.Fatalf("seed %d %+v: two runs differ", seed, p)
			}
			sh := Snapshot{Nodes: shuffled(r, s.Nodes), Running: shuffled(r, s.Running), Pending: shuffled(r, s.Pending)}
			for i := range sh.Nodes {
				sh.Nodes[i].Features = shuffled(r, sh.Nodes[i].Features)
			}
			if got := Plan(sh, t0, p); !reflect.DeepEqual(want, got) {
				t.Fatalf("seed %d %+v: shuffled input changes the decisions", seed, p)
			}
		}
	}
}

func shuffled[T any](r *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestPropertyReservationsHold simulates forward: every job started now
// runs to its walltime, everything running ends at its End, and each
// reserved job must then be able to start at its reserved time.
func TestPropertyReservationsHold(t *testing.T) {
	checked := 0
	for seed := range uint64(60) {
		s := randomSnapshot(seed)
		for _, p := range []Policy{{Depth: DepthEASY}, {Depth: DepthAll}} {
			d := Plan(s, t0, p)
			var later []Running // what holds resources after now
			later = append(later, s.Running...)
			for _, st := range d.Starts {
				j := jobByID(s, st.JobID)
				later = append(later, Running{JobID: j.ID, End: t0.Add(j.Walltime), Nodes: st.Nodes})
			}
			for _, w := range d.Waiting {
				if w.ReservedStart.IsZero() {
					continue
				}
				checked++
				at := w.ReservedStart
				var still []Running
				for _, r := range later {
					if r.End.After(at) {
						still = append(still, r)
					}
				}
				j := jobByID(s, w.JobID)
				d2 := Plan(Snapshot{Nodes: s.Nodes, Running: still, Pending: []Job{j}}, at, Policy{Depth: DepthFCFS})
				if _, ok := started(d2, j.ID); !ok {
					t.Errorf("seed %d depth %d: job %d reserved for %v cannot start then: %+v", seed, p.Depth, j.ID, at, d2.Waiting)
				}
				if len(w.ReservedNodes) != gangSize(&j) {
					t.Errorf("job %d reserved %v, needs %d nodes", j.ID, w.ReservedNodes, gangSize(&j))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no reservation was made: the test checks nothing")
	}
}

// linearBest scores every Up node's free-now state for j, without the
// index: the best by fitOn and better, and how many fit.
func linearBest(c *cluster, j *Job, k *kind) (best candidate, n int) {
	for i := range c.nodes {
		nd := &c.nodes[i]
		if nd.state != NodeUp {
			continue
		}
		if cd, r := c.fitOn(int32(i), nd.availNow(), j, k, true); r == "" {
			if n == 0 || better(cd, best) {
				best = cd
			}
			n++
		}
	}
	return best, n
}

// TestIndexMatchesLinearScan checks the bucket index against scoring every
// node: the first node chosen for each job is the best by fitOn and better.
func TestIndexMatchesLinearScan(t *testing.T) {
	for seed := range uint64(30) {
		s := randomSnapshot(seed)
		for ff, sc := range [][]Scorer{nil, FirstFitScorers()} {
			p := Policy{Depth: DepthEASY, Scorers: sc}
			pl := &planner{c: newCluster(s, t0, newProfile(p)), p: p, jobs: s.Pending}
			pl.c.queue = queueShapes(s.Pending, s.Running)
			for _, ji := range queueOrder(s.Pending, t0, pl.p) {
				j := &s.Pending[ji]
				k := pl.c.kindOf(j)
				if r, _ := pl.c.staticCheck(j, k, true); r != "" || gangSize(j) != 1 {
					continue
				}
				best, n := linearBest(pl.c, j, k)
				k.fails = nil // the linear scan must not be skipped
				got, reason := pl.placeNow(j, k)
				if (n > 0) != (reason == "") {
					t.Fatalf("seed %d job %d: index says %q, linear found %d nodes", seed, j.ID, reason, n)
				}
				if n == 0 {
					continue
				}
				if got[0].node != best.node || got[0].gpus != best.gpus {
					t.Fatalf("seed %d ff=%d job %d: index chose %s gpus %b, linear %s gpus %b", seed, ff, j.ID,
						pl.c.nodes[got[0].node].name, got[0].gpus, pl.c.nodes[best.node].name, best.gpus)
				}
				pl.start(j, k, got)
			}
		}
	}
}
