package server

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
)

// TestNodeViewsFollowEveryChange: the kept placement views and their hash
// always equal a fresh conversion of the registry, through every kind of
// node change: a new node, a drain, a GPU drained and returned, a new
// registration, the agent lost, the node removed.
func TestNodeViewsFollowEveryChange(t *testing.T) {
	h := newHarness(t, testConfig())
	s := h.srv
	gpu := cpuNode("g1")
	gpu.GPUs = []api.GPU{{Index: 0, Model: "NVIDIA A100", Memory: 40 * gib}, {Index: 1, Model: "NVIDIA A100", Memory: 40 * gib}}
	gpu.Links = resources.NVSwitchLinks(2)
	check := func(step string) {
		t.Helper()
		s.mu.Lock()
		got := s.placementNodesLocked()
		gotHash := s.nodesHashLocked()
		var want []placement.Node
		for name, n := range s.nodes {
			want = append(want, placementNode(name, n))
		}
		views := len(s.nodeViews)
		s.mu.Unlock()
		byName := func(a, b placement.Node) int { return strings.Compare(a.Name, b.Name) }
		slices.SortFunc(got, byName)
		slices.SortFunc(want, byName)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: kept views\n%+v\nfresh\n%+v", step, got, want)
		}
		if wantHash := s.feasible.hashNodes(want); gotHash != wantHash {
			t.Errorf("%s: kept hash %x, fresh %x", step, gotHash, wantHash)
		}
		if views != len(want) {
			t.Errorf("%s: %d views kept for %d nodes", step, views, len(want))
		}
	}
	check("one node")
	if err := s.AttachAgent(gpu, &fakeAgent{}); err != nil {
		t.Fatal(err)
	}
	check("GPU node added")
	if err := s.setDrain("n1", true, "maintenance", false); err != nil {
		t.Fatal(err)
	}
	check("n1 drained")
	if err := s.setGPUDrain("g1", 1, "XID 79", true); err != nil {
		t.Fatal(err)
	}
	check("GPU 1 drained")
	s.mu.Lock()
	if n := len(s.nodeViews["g1"].pn.GPUs); n != 1 {
		t.Errorf("g1 offers %d GPUs with one drained, want 1", n)
	}
	s.mu.Unlock()
	if err := s.setGPUDrain("g1", 1, "", false); err != nil {
		t.Fatal(err)
	}
	check("GPU 1 back")
	gpu.Memory *= 2
	if err := s.AttachAgent(gpu, &fakeAgent{}); err != nil {
		t.Fatal(err)
	}
	check("g1 registered again with more memory")
	s.mu.Lock()
	s.nodes["n1"].agent = false // derived, in place, as markDown sets it
	s.mu.Unlock()
	check("n1's agent gone")
	s.markDown("g1", "no heartbeat", time.Now())
	check("g1 down")
	s.mu.Lock()
	if st := s.nodeViews["g1"].pn.State; st != placement.NodeDown {
		t.Errorf("g1's view is %v after its agent was lost, want down", st)
	}
	delete(s.nodes, "g1") // as a node removal does (agenthttp.go)
	s.mu.Unlock()
	check("g1 removed")
}
