package placement

import (
	"cmp"
	"slices"
)

// Exclusive reservations. On a machine of identical CPU-only nodes where a
// job takes every CPU of each of its nodes (all SWF replays: single-CPU
// nodes, one CPU per node), a node can hold the job's share over a window
// exactly when no allocation on it overlaps the window: every allocation
// holds at least one CPU, so any overlap leaves fewer CPUs than the job
// needs, and without one the whole node is free. All such nodes then score
// alike, so conservative's order (best fit, then name) is plain name order.
//
// That turns the general check (availWindow and fitOn per node, linear in
// the node's allocations, memory peak quadratic) into a binary search over
// the node's allocations sorted by start with a running maximum of their
// ends, and lets the node scan stop at the first need nodes that fit. The
// answer is the one the general path gives; the tests compare them
// (TestExclusiveMatchesGeneral).

// exclusiveFastPath is off only in tests that compare it with the general
// path.
var exclusiveFastPath = true

// nodeIv is a node's allocations as intervals, sorted by start; pmax of
// an entry is the latest end among it and those before it.
type nodeIv []ivEntry

type ivEntry struct{ start, end, pmax int64 }

// exclusiveClass returns the class j can use alone when the fast path
// applies to it: exactly one class with Up nodes may hold the job, it has
// no GPUs, the job takes all its CPUs, and every allocation on it holds a
// CPU.
func (c *cluster) exclusiveClass(j *Job, k *kind) (int32, bool) {
	ci := int32(-1)
	for i := range c.classes {
		if !k.classOK[i] || c.classes[i].up == 0 {
			continue
		}
		if ci >= 0 {
			return 0, false
		}
		ci = int32(i)
	}
	if ci < 0 {
		return 0, false
	}
	cl := &c.classes[ci]
	r := &j.PerNode
	ok := len(cl.gpus) == 0 && r.GPU.Count == 0 && r.CPUs >= 1 && r.CPUs == cl.ncpu &&
		r.Memory <= cl.mem && cl.cpuless == 0
	return ci, ok
}

// ivOf builds the interval index of class ci on first use in a pass;
// commit keeps it current from then on.
func (c *cluster) ivOf(ci int32) {
	if c.iv == nil {
		c.iv = make([]nodeIv, len(c.nodes))
		c.ivBuilt = make([]bool, len(c.classes))
	}
	if c.ivBuilt[ci] {
		return
	}
	c.ivBuilt[ci] = true
	for _, ni := range c.classes[ci].nodes {
		n := &c.nodes[ni]
		v := c.iv[ni][:0]
		for _, ai := range n.allocs {
			v = append(v, ivEntry{start: c.running[ai].start, end: c.running[ai].end})
		}
		// Ties in start keep allocation order, so the index is the same
		// whatever the sort does with them.
		slices.SortStableFunc(v, func(a, b ivEntry) int { return cmp.Compare(a.start, b.start) })
		v.fix(0)
		c.iv[ni] = v
	}
}

// fix recomputes pmax from position i on.
func (v nodeIv) fix(i int) {
	for ; i < len(v); i++ {
		v[i].pmax = v[i].end
		if i > 0 {
			v[i].pmax = max(v[i].pmax, v[i-1].pmax)
		}
	}
}

// add records an allocation over [start, end).
func (v *nodeIv) add(start, end int64) {
	s := *v
	// Reservations mostly come in later than what is booked: look from
	// the back, past equal starts so the insertion point is unique.
	i := len(s)
	for i > 0 && s[i-1].start > start {
		i--
	}
	s = slices.Insert(s, i, ivEntry{start: start, end: end})
	s.fix(i)
	*v = s
}

// free reports whether nothing on the node overlaps [t0, t1).
func (v nodeIv) free(t0, t1 int64) bool {
	if len(v) == 0 || v[len(v)-1].pmax <= t0 || v[0].start >= t1 {
		return true // all over before the window, or all after it
	}
	// Allocations starting before t1 are a prefix; one of them overlaps
	// exactly when the latest of their ends is after t0.
	lo, hi := 0, len(v)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v[m].start < t1 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo == 0 || v[lo-1].pmax <= t0
}

// reserveExclusive is reserve for a job the fast path applies to: the
// steps of the class's aggregate profile that could hold the gang, each
// checked node by node in name order until need of them are free for the
// whole walltime.
func (pl *planner) reserveExclusive(j *Job, ci int32, reason Reason) bool {
	c := pl.c
	need := gangSize(j)
	r := &j.PerNode
	wall := forever
	if j.Walltime > 0 {
		wall = int64(j.Walltime)
	}
	agg := c.aggOf(ci)
	c.ivOf(ci)
	nodes := c.classes[ci].nodes
	n := int64(need)
	cpus, mem := n*int64(r.CPUs), n*r.Memory
	picked := pl.picked[:0]
	for i := agg.nextStart(0, wall, cpus, mem, 0); i >= 0; i = agg.nextStart(i+1, wall, cpus, mem, 0) {
		t := agg.t[i]
		end := c.endOf(j, t)
		picked = picked[:0]
		for _, ni := range nodes {
			if c.nodes[ni].state == NodeUp && c.iv[ni].free(t, end) {
				if picked = append(picked, ni); len(picked) == need {
					break
				}
			}
		}
		if len(picked) < need {
			continue
		}
		pl.picked = picked
		names := make([]string, 0, need)
		for _, ni := range picked {
			c.commit(ni, t, end, c.allCPUs(ni), j.PerNode, 0, false)
			names = append(names, c.nodes[ni].name)
		}
		pl.reserved(j, reason, t, names)
		return true
	}
	pl.picked = picked
	pl.wait(j, reason, detailFor(reason))
	return false
}

// allCPUs returns a scratch mask of every cpu position of node ni.
func (c *cluster) allCPUs(ni int32) []uint64 {
	m := c.scratchCPU(ni)
	clear(m)
	for p := 0; p < c.nodes[ni].ncpu; p++ {
		m[p/64] |= 1 << (p % 64)
	}
	return m
}
