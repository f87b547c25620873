package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// planNodeByNode is Plan with every node looked at on its own in
// reservations and aggregate profiles, as before groups (group.go).
func planNodeByNode(s Snapshot, now time.Time, p Policy) Decisions {
	c := newCluster(s, now, newProfile(p))
	c.noGroups = true
	c.beginPass()
	return c.plan(s.Pending, s.Running, now, p)
}

// groupedSnapshot is a machine of identical nodes where running gangs end
// together (large groups of interchangeable nodes), some nodes draining,
// and a queue of gangs large enough to need reservations.
func groupedSnapshot(r *rand.Rand) Snapshot {
	var s Snapshot
	n := 20 + r.IntN(200)
	cpus := 1 + r.IntN(4)
	for i := range n {
		nd := Node{Name: fmt.Sprintf("n%04d", i), CPUs: cpus, Memory: 8 * gib}
		if r.IntN(20) == 0 {
			nd.State = NodeDraining
		}
		s.Nodes = append(s.Nodes, nd)
	}
	next, id := 0, uint64(1000)
	for next < n*3/4 {
		size := 1 + r.IntN(n/4)
		run := Running{JobID: id, End: t0.Add(time.Duration(1+r.IntN(6)) * time.Hour)}
		for k := range min(size, n-next) {
			a := NodeAlloc{Node: s.Nodes[next+k].Name, Memory: gib}
			for c := range 1 + r.IntN(cpus) {
				a.CPUs = append(a.CPUs, c)
			}
			run.Nodes = append(run.Nodes, a)
		}
		next += size
		id++
		s.Running = append(s.Running, run)
	}
	for i := range 10 + r.IntN(40) {
		s.Pending = append(s.Pending, Job{ID: uint64(i + 1), Priority: 100, Submit: t0.Add(-time.Duration(r.IntN(3600)) * time.Second),
			Nodes: 1 + r.IntN(n/2), PerNode: Request{CPUs: 1 + r.IntN(cpus), Memory: gib}, Walltime: time.Duration(1+r.IntN(300)) * time.Minute})
	}
	return s
}

// TestGroupsMatchNodeByNode checks that looking at one node per group of
// interchangeable nodes reserves exactly the nodes, at exactly the times,
// that looking at every node does, and so decides the same, on machines
// of identical nodes with large groups and on mixed random clusters,
// under every policy.
func TestGroupsMatchNodeByNode(t *testing.T) {
	reservations := 0
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 23))
		s := groupedSnapshot(r)
		if seed%3 == 0 {
			s = randomSnapshot(seed)
		}
		for pi, p := range allPolicies {
			want := planNodeByNode(s, t0, p)
			got := Plan(s, t0, p)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d policy %d: grouped and node by node differ: %s", seed, pi, firstDiff(got, want))
			}
			for _, w := range got.Waiting {
				if len(w.ReservedNodes) > 1 {
					reservations++
				}
			}
		}
	}
	if reservations < 100 {
		t.Fatalf("only %d gang reservations compared", reservations)
	}
}

// TestGroupsDoNotGrowWithJobs runs thousands of jobs, each ending at its
// own time, through a kept State: the groups of histories no node has
// any more are reused, so their number stays bounded by the nodes, not
// by the jobs ever run.
func TestGroupsDoNotGrowWithJobs(t *testing.T) {
	var nodes []Node
	for i := range 32 {
		nodes = append(nodes, Node{Name: fmt.Sprintf("n%02d", i), CPUs: 1, Memory: gib})
	}
	st := NewState(nodes, nil)
	now := t0
	for i := range 3000 {
		id := uint64(i + 1)
		st.Start(Running{JobID: id, End: now.Add(time.Duration(i+1) * time.Second), Nodes: []NodeAlloc{{Node: nodes[i%32].Name, CPUs: []int{0}}}})
		if i >= 16 {
			st.End(id - 16)
		}
		if i%7 == 0 {
			// A blocked gang makes the pass reserve, which regroups.
			st.Plan([]Job{{ID: 1 << 40, Nodes: 32, PerNode: Request{CPUs: 1}, Walltime: time.Hour}}, now, Policy{Depth: DepthEASY})
		}
	}
	if g := len(st.c.groups); g > 2*len(nodes) {
		t.Fatalf("%d groups kept for %d nodes after 3,000 jobs", g, len(nodes))
	}
}
