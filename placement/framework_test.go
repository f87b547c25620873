package placement

import (
	"hash/fnv"
	"reflect"
	"slices"
	"testing"
)

// acceptAll is a filter that passes every node and declares nothing: it
// changes no answer, but turns every fast path off.
type acceptAll struct{}

func (acceptAll) Name() string                { return "accept-all" }
func (acceptAll) Props() Props                { return 0 }
func (acceptAll) Filter(*Job, *NodeView) bool { return true }

// nameFilter rejects the nodes named in out: it depends on the node's
// name, so it must not be asked once per bucket. props is what it
// declares, honestly (0) or not.
type nameFilter struct {
	out   map[string]bool
	props Props
}

func (f nameFilter) Name() string                    { return "by-name" }
func (f nameFilter) Props() Props                    { return f.props }
func (f nameFilter) Filter(_ *Job, n *NodeView) bool { return !f.out[n.Name] }

// nameScorer costs each node a hash of its name: a ranking no node state
// explains, so only a node-by-node evaluation gets it right.
type nameScorer struct{ props Props }

func (nameScorer) Name() string   { return "by-name-hash" }
func (s nameScorer) Props() Props { return s.props }
func (nameScorer) Cost(_ *Job, n *NodeView, _ *Queue) float64 {
	h := fnv.New32a()
	h.Write([]byte(n.Name))
	return float64(h.Sum32() % 7)
}

// pickOut chooses about a third of the Up nodes by a fixed rule.
func pickOut(s Snapshot) map[string]bool {
	out := map[string]bool{}
	for i, n := range s.Nodes {
		if i%3 == 1 {
			out[n.Name] = true
		}
	}
	return out
}

// without is s with the named nodes and everything on them removed.
func without(s Snapshot, out map[string]bool) Snapshot {
	r := Snapshot{Pending: s.Pending}
	for _, n := range s.Nodes {
		if !out[n.Name] {
			r.Nodes = append(r.Nodes, n)
		}
	}
	for _, run := range s.Running {
		keep := run
		keep.Nodes = slices.DeleteFunc(slices.Clone(run.Nodes), func(a NodeAlloc) bool { return out[a.Node] })
		r.Running = append(r.Running, keep)
	}
	return r
}

// TestUndeclaredPluginIsCorrect: a filter that depends on node names and
// declares nothing gives exactly the starts and reservations of a
// cluster without those nodes, with EASY and conservative backfilling.
// The same filter claiming StateOnly (a lie) lets the bucket index ask
// it about one node for many, and the decisions go wrong: the
// comparison can fail.
func TestUndeclaredPluginIsCorrect(t *testing.T) {
	lies := 0
	for seed := range uint64(30) {
		s := randomSnapshot(seed)
		out := pickOut(s)
		// Jobs running on the nodes taken out would be gone from a
		// cluster without them, but a filter leaves them running, and
		// GPUFragmentation counts running jobs' shapes: start from a
		// snapshot where nothing runs there, so both see one workload.
		s.Running = slices.DeleteFunc(slices.Clone(s.Running), func(r Running) bool {
			return slices.ContainsFunc(r.Nodes, func(a NodeAlloc) bool { return out[a.Node] })
		})
		for _, depth := range []int{DepthEASY, 3, DepthAll} {
			want := Plan(without(s, out), t0, Policy{Depth: depth})
			got := Plan(s, t0, Policy{Depth: depth, Filters: []Filter{nameFilter{out: out}}})
			if !reflect.DeepEqual(want.Starts, got.Starts) || !reflect.DeepEqual(reservations(want), reservations(got)) {
				t.Fatalf("seed %d depth %d: undeclared name filter differs from removing the nodes\n got %+v\nwant %+v",
					seed, depth, got.Starts, want.Starts)
			}
			lie := Plan(s, t0, Policy{Depth: depth, Filters: []Filter{nameFilter{out: out, props: StateOnly | ShapeOnly | Monotone}}})
			if !reflect.DeepEqual(want.Starts, lie.Starts) || !reflect.DeepEqual(reservations(want), reservations(lie)) {
				lies++
			}
		}
	}
	if lies == 0 {
		t.Fatal("a filter lying about its properties never changed a decision: the test could not fail")
	}
}

type rsv struct {
	id    uint64
	at    int64
	nodes []string
}

func reservations(d Decisions) []rsv {
	var r []rsv
	for _, w := range d.Waiting {
		if !w.ReservedStart.IsZero() {
			r = append(r, rsv{w.JobID, w.ReservedStart.UnixNano(), w.ReservedNodes})
		}
	}
	return r
}

// TestUndeclaredScorerMatchesLinearScan: with a scorer that ranks by node
// name and declares nothing, each single-node job goes to the node a scan
// of every node ranks first, as for the built-in ranking
// (TestIndexMatchesLinearScan).
func TestUndeclaredScorerMatchesLinearScan(t *testing.T) {
	checked := 0
	for seed := range uint64(30) {
		s := randomSnapshot(seed)
		p := Policy{Depth: DepthEASY, Scorers: []Scorer{Packing{}, nameScorer{}}}
		pl := &planner{c: newCluster(s, t0, newProfile(p)), p: p, jobs: s.Pending}
		for _, ji := range queueOrder(s.Pending, t0, p) {
			j := &s.Pending[ji]
			k := pl.c.kindOf(j)
			if r, _ := pl.c.staticCheck(j, k, true); r != "" || gangSize(j) != 1 {
				continue
			}
			best, n := linearBest(pl.c, j, k)
			got, reason := pl.placeNow(j, k)
			if (n > 0) != (reason == "") {
				t.Fatalf("seed %d job %d: placeNow says %q, scan found %d nodes", seed, j.ID, reason, n)
			}
			if n == 0 {
				continue
			}
			if got[0].node != best.node || got[0].gpus != best.gpus {
				t.Fatalf("seed %d job %d: chose %s, scan %s", seed, j.ID, pl.c.nodes[got[0].node].name, pl.c.nodes[best.node].name)
			}
			checked++
			pl.start(j, k, got)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d placements checked", checked)
	}
}

func TestProfileFastPaths(t *testing.T) {
	cases := []struct {
		name              string
		p                 Policy
		byState, memo     [2]bool
		stop              [2]bool
		excl              bool
		packing, rsvCache bool
	}{
		{"default", Policy{}, [2]bool{true, true}, [2]bool{true, true}, [2]bool{true, false}, true, true, true},
		{"first fit", Policy{Scorers: FirstFitScorers()}, [2]bool{true, true}, [2]bool{true, true}, [2]bool{false, false}, true, false, true},
		{"undeclared filter", Policy{Filters: []Filter{acceptAll{}}}, [2]bool{false, false}, [2]bool{false, false}, [2]bool{true, false}, false, true, false},
		{"undeclared scorer", Policy{Scorers: []Scorer{Packing{}, nameScorer{}}}, [2]bool{false, false}, [2]bool{true, true}, [2]bool{false, false}, false, true, true},
	}
	for _, c := range cases {
		pr := newProfile(c.p)
		if pr.byState != c.byState || pr.memo != c.memo || pr.stop != c.stop || pr.excl != c.excl || pr.packing != c.packing || pr.rsvCache != c.rsvCache {
			t.Errorf("%s: byState %v memo %v stop %v excl %v packing %v rsvCache %v", c.name, pr.byState, pr.memo, pr.stop, pr.excl, pr.packing, pr.rsvCache)
		}
	}
}
