package placement

import "slices"

// The undo journal of a pass over the kept state (State.Plan). A pass
// books its starts and reservations on the cluster as it goes (commit,
// commitExclusive); the nodes it books on are saved the first time, and
// put back with the index when the pass is over, so the next pass sees
// only what deltas changed. The cost is per node the pass touched.

// savedNode is a node's free-now state from before the pass changed it.
type savedNode struct {
	node     int32
	cpuOff   int // its freeCPU words in cluster.savedCPU
	nFreeCPU int
	freeMem  int64
	freeGPU  uint64
	share    []int16
	nShared  int
	busy     bool
	nallocs  int
}

// beginPass starts the journal.
func (c *cluster) beginPass() {
	c.pass++
	c.journal = true
	c.baseRun = len(c.running)
	c.cplessPre = c.cplessPre[:0]
	for ci := range c.classes {
		c.cplessPre = append(c.cplessPre, c.classes[ci].cpuless)
	}
}

// save journals node ni before its first change in this pass.
func (c *cluster) save(ni int32) {
	n := &c.nodes[ni]
	if !c.journal || n.savedAt == c.pass {
		return
	}
	n.savedAt = c.pass
	sv := savedNode{node: ni, cpuOff: len(c.savedCPU), nFreeCPU: n.nFreeCPU, freeMem: n.freeMem,
		freeGPU: n.freeGPU, nShared: n.nShared, busy: n.busy, nallocs: len(n.allocs)}
	c.savedCPU = append(c.savedCPU, n.freeCPU...)
	if n.share != nil {
		sv.share = slices.Clone(n.share)
	}
	c.saved = append(c.saved, sv)
}

// endPass puts back every node the pass changed and drops what the pass
// built for itself alone (bookings, aggregate profiles, interval indexes,
// kinds and their failure memos).
func (c *cluster) endPass() {
	// Out of the index all at once, back all at once, in name order:
	// linear in the nodes, however many one gang took.
	nis := c.restoreBuf[:0]
	for i := range c.saved {
		nis = append(nis, c.saved[i].node)
	}
	slices.Sort(nis)
	c.unindexMany(nis)
	for i := range c.saved {
		sv := &c.saved[i]
		ni := sv.node
		n := &c.nodes[ni]
		copy(n.freeCPU, c.savedCPU[sv.cpuOff:sv.cpuOff+len(n.freeCPU)])
		n.nFreeCPU, n.freeMem, n.freeGPU = sv.nFreeCPU, sv.freeMem, sv.freeGPU
		n.share, n.nShared, n.busy = sv.share, sv.nShared, sv.busy
		n.allocs = n.allocs[:sv.nallocs]
		n.reserved, n.excl = false, 0
	}
	c.indexMany(c.upOnly(nis))
	c.restoreBuf = nis[:0]
	c.saved, c.savedCPU = c.saved[:0], c.savedCPU[:0]
	clear(c.running[c.baseRun:])
	c.running = c.running[:c.baseRun]
	for ci := range c.classes {
		c.classes[ci].cpuless = c.cplessPre[ci]
	}
	c.excl, c.exclG = c.excl[:0], c.exclG[:0]
	c.reservedNodes, c.reservedFree = c.reservedNodes[:0], c.reservedFree[:0]
	c.agg, c.iv, c.ivBuilt, c.ivUp, c.busy = nil, nil, nil, nil, nil
	clear(c.kinds)
	c.gangs, c.queue = 0, Queue{}
	c.journal = false
	if len(c.buckets) > 2*len(c.nodes)+1024 {
		c.indexAll() // drop the buckets of states no node is in any more
	}
}

// releaseAlloc takes running allocation ai off its node (a job ended) and
// puts the slot up for reuse. The node's free state is recomputed from
// what still runs there, as a rebuild would. The caller takes the node
// out of the index before and puts it back after.
func (c *cluster) releaseAlloc(ai int32) {
	ra := &c.running[ai]
	n := &c.nodes[ra.node]
	if i := slices.Index(n.allocs, ai); i >= 0 {
		n.allocs = slices.Delete(n.allocs, i, i+1)
	}
	if popcount(ra.cpus) == 0 {
		c.classes[n.class].cpuless--
	}
	c.freeSlots = append(c.freeSlots, ai)
	for w := range n.freeCPU {
		n.freeCPU[w] = 0
	}
	for p := 0; p < n.ncpu; p++ {
		n.freeCPU[p/64] |= 1 << (p % 64)
	}
	n.freeMem = n.mem
	n.freeGPU = c.classes[n.class].allGPUs
	n.share, n.nShared = nil, 0
	for _, bi := range n.allocs {
		b := &c.running[bi]
		for w := range n.freeCPU {
			n.freeCPU[w] &^= b.cpus[w]
		}
		n.freeMem -= b.mem
		if b.share > 0 {
			n.addShare(b.gpus, b.share)
		}
		n.freeGPU &^= b.gpus
	}
	n.nFreeCPU = popcount(n.freeCPU)
	n.busy = len(n.allocs) > 0
}
