package server

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
)

// TestFeasibleMemoCoversNodeFields guards hashNodes: a field added to
// placement.Node or placement.GPU may change Feasible's answer, so the
// memo must hash it (then update the counts here).
func TestFeasibleMemoCoversNodeFields(t *testing.T) {
	if n := reflect.TypeOf(placement.Node{}).NumField(); n != 9 {
		t.Errorf("placement.Node has %d fields, hashNodes covers 9: hash the new one in server/feasible.go", n)
	}
	if n := reflect.TypeOf(placement.GPU{}).NumField(); n != 4 {
		t.Errorf("placement.GPU has %d fields, hashNodes covers 4: hash the new one in server/feasible.go", n)
	}
}

func TestFeasibleMemo(t *testing.T) {
	gpuNode := func(name string, model string) placement.Node {
		return placement.Node{Name: name, CPUs: 8, Memory: 16 * gib,
			GPUs:  []placement.GPU{{ID: 0, Model: model, Memory: 16 * gib}, {ID: 1, Model: model, Memory: 16 * gib}},
			Links: resources.NVSwitchLinks(2)}
	}
	base := []placement.Node{gpuNode("a", "NVIDIA A100"), {Name: "c", CPUs: 4, Memory: gib}}
	gpuJob := placement.Job{ID: 1, PerNode: placement.Request{CPUs: 1, Memory: gib, GPU: placement.GPURequest{Count: 2, Model: "A100"}}}
	variants := []struct {
		name  string
		nodes func() []placement.Node
	}{
		{"the same nodes", func() []placement.Node { return base }},
		{"GPU model changed", func() []placement.Node {
			return []placement.Node{gpuNode("a", "NVIDIA H100"), base[1]}
		}},
		{"node down", func() []placement.Node {
			n := gpuNode("a", "NVIDIA A100")
			n.State = placement.NodeDown
			return []placement.Node{n, base[1]}
		}},
		{"one GPU fewer", func() []placement.Node {
			n := gpuNode("a", "NVIDIA A100")
			n.GPUs, n.Links = n.GPUs[:1], resources.NVSwitchLinks(1)
			return []placement.Node{n, base[1]}
		}},
		{"links changed", func() []placement.Node {
			n := gpuNode("a", "NVIDIA A100")
			n.Links = resources.PCIeLinks(2)
			return []placement.Node{n, base[1]}
		}},
		{"node renamed", func() []placement.Node {
			return []placement.Node{gpuNode("b", "NVIDIA A100"), base[1]}
		}},
	}
	jobs := []placement.Job{
		gpuJob,
		{ID: 2, PerNode: placement.Request{CPUs: 8, Memory: gib}},
		{ID: 3, Nodes: 2, PerNode: placement.Request{CPUs: 4, Memory: gib}},
		{ID: 4, PerNode: placement.Request{CPUs: 1, Memory: gib, GPU: placement.GPURequest{Count: 2, NVLink: true}}},
		{ID: 5, PerNode: placement.Request{CPUs: 1, Memory: gib}, Features: []string{"x"}},
	}
	m := newFeasibleMemo()
	// The memo answers exactly as Feasible does, in any order of node
	// changes, including going back to nodes seen before.
	for round := 0; round < 2; round++ {
		for _, v := range variants {
			nodes := v.nodes()
			for _, j := range jobs {
				want := placement.Feasible(nodes, j)
				for k := 0; k < 2; k++ { // the second answer comes from the memo
					got := m.check(nodes, j)
					if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
						t.Errorf("%s, job %d, try %d: memo says %v, Feasible %v", v.name, j.ID, k, got, want)
					}
				}
			}
		}
	}
	// The order of the nodes does not matter.
	h1, h2 := m.hashNodes(base), m.hashNodes([]placement.Node{base[1], base[0]})
	if h1 != h2 {
		t.Errorf("the same nodes in another order hash differently: %x, %x", h1, h2)
	}
	// A memo that never answers would pass the checks above: after one
	// shape on the same nodes in two orders it holds that one answer.
	m = newFeasibleMemo()
	m.check(base, jobs[0])
	m.check([]placement.Node{base[1], base[0]}, jobs[0])
	if len(m.byJob) != 1 {
		t.Errorf("memo holds %d answers after one shape on one node set, want 1", len(m.byJob))
	}
	var rej *placement.Rejection
	if err := m.check(base, placement.Job{PerNode: placement.Request{CPUs: 64}}); !errors.As(err, &rej) {
		t.Errorf("a job too large for every node: %v, want a *placement.Rejection", err)
	}
}
