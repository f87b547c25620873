package placement

import (
	"math"
	"math/bits"
)

// A node's time profile is the list of its allocations (c.running entries
// in node.allocs), each holding cpu positions, memory and GPUs over
// [start, end): running jobs from the past until their end, jobs started
// in this pass from now until now plus their walltime, reservations from
// their reserved start. Profiles are only read for nodes and times where a
// reservation is involved; the free-now state answers everything else.

// pastStart is the start of an allocation that already runs.
const pastStart = math.MinInt64

// scratchCPU returns a cpu bitset sized for node ni, reused between calls.
func (c *cluster) scratchCPU(ni int32) []uint64 {
	w := len(c.nodes[ni].freeCPU)
	if cap(c.cpuScratch) < w {
		c.cpuScratch = make([]uint64, w)
	}
	return c.cpuScratch[:w]
}

// availWindow is what node ni has free throughout [t0, t1): cpus and GPUs
// that no allocation overlapping the window holds, and the memory left at
// the window's fullest instant. cpuMask receives the cpu positions.
func (c *cluster) availWindow(ni int32, t0, t1 int64, cpuMask []uint64) avail {
	n := &c.nodes[ni]
	clear(cpuMask)
	for p := 0; p < n.ncpu; p++ {
		cpuMask[p/64] |= 1 << (p % 64)
	}
	a := avail{gpus: c.classes[n.class].allGPUs, cpuMask: cpuMask}
	memHeld := false
	var whole uint64 // GPUs some job in the window holds whole
	for _, ai := range n.allocs {
		r := &c.running[ai]
		if r.start >= t1 || r.end <= t0 {
			continue
		}
		for w := range cpuMask {
			cpuMask[w] &^= r.cpus[w]
		}
		a.gpus &^= r.gpus
		if r.share == 0 {
			whole |= r.gpus
		} else {
			// Shares of every sharing job in the window add up: a bound
			// on the peak, which is all a reservation needs.
			if a.shares == nil {
				a.shares = c.shareScratch(len(n.gpus))
			}
			for m := r.gpus; m != 0; m &= m - 1 {
				a.shares[bits.TrailingZeros64(m)] += r.share
			}
		}
		memHeld = memHeld || r.mem != 0
	}
	for x := n.excl; x != 0; x = c.excl[x-1].next {
		if e := &c.exclG[c.excl[x-1].gang]; e.start < t1 && e.end > t0 {
			clear(cpuMask) // it holds every cpu
			memHeld = memHeld || e.mem != 0
		}
	}
	// Memory is fungible, so what matters is its peak use over the window,
	// reached at the window's start or when some allocation starts in it.
	// That costs quadratic time in the allocations, so it is skipped when
	// none overlapping the window holds memory (SWF jobs ask for none).
	var peak int64
	if memHeld {
		peak = c.memUsedAt(n, t0)
		for _, ai := range n.allocs {
			if r := &c.running[ai]; r.start > t0 && r.start < t1 {
				peak = max(peak, c.memUsedAt(n, r.start))
			}
		}
		for x := n.excl; x != 0; x = c.excl[x-1].next {
			if e := &c.exclG[c.excl[x-1].gang]; e.start > t0 && e.start < t1 {
				peak = max(peak, c.memUsedAt(n, e.start))
			}
		}
	}
	for m := whole; a.shares != nil && m != 0; m &= m - 1 {
		a.shares[bits.TrailingZeros64(m)] = 100 // no room for a sharer
	}
	a.cpus = popcount(cpuMask)
	a.mem = n.mem - peak
	return a
}

// shareScratch returns a zeroed per-GPU share slice reused between calls.
func (c *cluster) shareScratch(g int) []int16 {
	if cap(c.shareBuf) < g {
		c.shareBuf = make([]int16, g)
	}
	s := c.shareBuf[:g]
	clear(s)
	return s
}

// memUsedAt sums the memory of n's allocations that hold it at instant t.
func (c *cluster) memUsedAt(n *node, t int64) int64 {
	var used int64
	for _, ai := range n.allocs {
		if r := &c.running[ai]; r.start <= t && r.end > t {
			used += r.mem
		}
	}
	for x := n.excl; x != 0; x = c.excl[x-1].next {
		if e := &c.exclG[c.excl[x-1].gang]; e.start <= t && e.end > t {
			used += e.mem
		}
	}
	return used
}
