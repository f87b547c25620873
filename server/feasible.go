package server

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/hpc-sched/hpc/placement"
)

// feasibleMemo remembers placement.Feasible's answers per job shape.
// Feasible builds the placer's whole cluster — about 1.4 ms at 1,000
// nodes, the largest cost of a submit there — yet its answer depends only
// on the nodes' static description and the job's request, and scripts
// submit the same few shapes over and over. Answers are kept while a hash
// of the nodes stays the same.
type feasibleMemo struct {
	seed maphash.Seed

	mu    sync.Mutex
	nodes uint64 // hash of the nodes byJob was computed for
	byJob map[string]error
}

// maxFeasibleMemo bounds the memo: a user cycling through many shapes
// only ever makes it start over.
const maxFeasibleMemo = 4096

func newFeasibleMemo() *feasibleMemo {
	return &feasibleMemo{seed: maphash.MakeSeed(), byJob: map[string]error{}}
}

// check is placement.Feasible(nodes, j), memoised.
func (m *feasibleMemo) check(nodes []placement.Node, j placement.Job) error {
	return m.checkHashed(m.hashNodes(nodes), j, func() ([]placement.Node, uint64) { return nodes, m.hashNodes(nodes) })
}

// checkHashed is check for nodes whose hashNodes is h, listed by list
// (with their hash, which may differ if they changed meanwhile) only
// when the memo has no answer.
func (m *feasibleMemo) checkHashed(h uint64, j placement.Job, list func() ([]placement.Node, uint64)) error {
	key := shapeKey(j)
	m.mu.Lock()
	if m.nodes != h || len(m.byJob) >= maxFeasibleMemo {
		m.nodes, m.byJob = h, map[string]error{}
	}
	err, ok := m.byJob[key]
	m.mu.Unlock()
	if ok {
		return err
	}
	nodes, h := list()
	err = placement.Feasible(nodes, j)
	m.mu.Lock()
	if m.nodes == h {
		m.byJob[key] = err
	}
	m.mu.Unlock()
	return err
}

// shapeKey is what Feasible reads of a job: its gang size, its per-node
// request (every field, by %+v, so a field added later counts too) and
// its features.
func shapeKey(j placement.Job) string {
	return fmt.Sprintf("%d|%+v|%q", j.Nodes, j.PerNode, j.Features)
}

// hashNodes hashes every field of the nodes that Feasible can read, in
// any order (the server lists its nodes from a map): the sum of one hash
// per node. CPU ids count by number only (Feasible never reads which they
// are). TestFeasibleMemoCoversNodeFields fails when placement.Node or
// placement.GPU gains a field, so that it is added here.
func (m *feasibleMemo) hashNodes(nodes []placement.Node) uint64 {
	sum := uint64(len(nodes))
	for i := range nodes {
		sum += m.hashNode(&nodes[i])
	}
	return sum
}

// hashNode is one node's part of hashNodes.
func (m *feasibleMemo) hashNode(n *placement.Node) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	var b [8]byte
	num := func(v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	str := func(s string) {
		num(int64(len(s)))
		h.WriteString(s)
	}
	str(n.Name)
	num(int64(n.State))
	num(int64(len(n.Features)))
	for _, f := range n.Features {
		str(f)
	}
	num(int64(n.CPUs))
	num(int64(len(n.CPUIDs)))
	num(n.Memory)
	num(int64(len(n.GPUs)))
	for _, g := range n.GPUs {
		num(int64(g.ID))
		str(g.Model)
		num(g.Memory)
		num(int64(g.NUMA))
	}
	num(int64(len(n.NUMA))) // which CPUs only steers CPU choice; sizes suffice
	for _, ids := range n.NUMA {
		num(int64(len(ids)))
	}
	num(int64(len(n.Links)))
	for _, row := range n.Links {
		num(int64(len(row)))
		for _, l := range row {
			h.WriteByte(byte(l))
		}
	}
	return h.Sum64()
}
