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

// Fast-path reservations skip the general booking list (c.running and
// node.allocs: a cpu bitset and two appends each, millions per trace).
// They take every cpu of the node and no GPU, so start, end and memory say
// all there is; each node chains its own in c.excl, newest first, and the
// profile readers (availWindow, probe, idleBefore, aggOf, ivOf) walk that
// chain beside node.allocs. None of them depends on the order.
// A gang's booking is one exclRes in c.exclG, linked to from each of its
// nodes' chains by an exclLink, a quarter of the size.
type exclRes struct{ start, end, mem int64 }

type exclLink struct {
	gang int32 // index into c.exclG
	next int32 // 1 + index of the node's previous link, 0: none
}

// nodeSkip is a node's answer to free in the current fast-path search
// (seq), good for every step before until.
type nodeSkip struct {
	until int64
	seq   uint64
	ok    bool
}

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

// ivOf builds the busy steps (exclbits.go) or, for a class too wide for
// them, the interval index of class ci on first use in a pass; commit
// keeps it current from then on.
func (c *cluster) ivOf(ci int32) {
	if c.iv == nil {
		c.iv = make([]nodeIv, len(c.nodes))
		c.ivBuilt = make([]bool, len(c.classes))
		c.ivUp = make([][]int32, len(c.classes))
		c.busy = make([]*busySteps, len(c.classes))
	}
	if c.ivBuilt[ci] {
		return
	}
	c.ivBuilt[ci] = true
	// A class narrow enough for busy steps needs no per-node index.
	if c.busy[ci] = c.newBusySteps(ci); c.busy[ci] != nil {
		return
	}
	// One slab for the class, with room for a pass's worth of bookings
	// per node, instead of a chain of doublings per node.
	nodes := c.classes[ci].nodes
	room := min(c.gangs, 1<<20)/max(len(nodes), 1) + 8
	size := 0
	for _, ni := range nodes {
		size += len(c.nodes[ni].allocs) + room
	}
	slab := make([]ivEntry, 0, size)
	up := c.ivUp[ci][:0]
	for _, ni := range nodes {
		n := &c.nodes[ni]
		if n.state == NodeUp {
			up = append(up, ni)
		}
		v := nodeIv(slab[len(slab):len(slab)])
		for _, ai := range n.allocs {
			v = append(v, ivEntry{start: c.running[ai].start, end: c.running[ai].end})
		}
		for x := n.excl; x != 0; x = c.excl[x-1].next {
			v = append(v, ivEntry{start: c.exclG[c.excl[x-1].gang].start, end: c.exclG[c.excl[x-1].gang].end})
		}
		// Ties in start keep allocation order, so the index is the same
		// whatever the sort does with them.
		slices.SortStableFunc(v, func(a, b ivEntry) int { return cmp.Compare(a.start, b.start) })
		v.fix(0)
		if cap(slab)-len(slab) >= len(v)+room {
			v = v[: len(v) : len(v)+room]
			slab = slab[:len(slab)+len(v)+room]
		}
		c.iv[ni] = v
	}
	c.ivUp[ci] = up
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

// free reports whether nothing on the node overlaps [t0, t1), and until
// when, for windows of the same length starting at or after t0, the
// answer stays the same. Busy: until the latest end among what overlaps
// (each later window still overlaps it). Free: until the first start at
// or after t1 comes inside the window.
func (v nodeIv) free(t0, t1 int64) (ok bool, until int64) {
	if len(v) == 0 || v[len(v)-1].pmax <= t0 && v[len(v)-1].start < t1 {
		return true, forever // all over before the window, none after it
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
	if lo > 0 && v[lo-1].pmax > t0 {
		return false, v[lo-1].pmax
	}
	if lo == len(v) || t1 == forever {
		return true, forever
	}
	return true, v[lo].start - (t1 - t0) + 1
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
	nodes := c.ivUp[ci] // node states do not change within a pass
	n := int64(need)
	cpus, mem := n*int64(r.CPUs), n*r.Memory
	picked := pl.picked[:0]
	// Steps come in increasing t with the same walltime, so a node's
	// answer holds until the time free reports; skip keeps it per node for
	// this job (ordinal seq), sparing the search on most nodes.
	if len(c.skip) < len(c.nodes) {
		c.skip = make([]nodeSkip, len(c.nodes))
	}
	c.skipSeq++
	seq := c.skipSeq
	i, okTo := agg.nextStartFrom(0, 0, wall, cpus, mem, 0)
	for ; i >= 0; i, okTo = agg.nextStartFrom(i+1, okTo, wall, cpus, mem, 0) {
		t := agg.t[i]
		end := c.endOf(j, t)
		picked = picked[:0]
		if b := c.busy[ci]; b != nil {
			picked = b.pick(c.classes[ci].nodes, t, end, need, picked)
			nodes = nil // skip the scan below
		}
		for _, ni := range nodes {
			sk := &c.skip[ni]
			if sk.seq != seq || t >= sk.until {
				ok, until := c.iv[ni].free(t, end)
				*sk = nodeSkip{until: until, seq: seq, ok: ok}
			}
			if !sk.ok {
				continue
			}
			if picked = append(picked, ni); len(picked) == need {
				break
			}
		}
		if len(picked) < need {
			continue
		}
		pl.picked = picked
		// Carved from one slab per pass: thousands of small name lists.
		if cap(c.nameSlab) < need {
			c.nameSlab = make([]string, max(need, 4096))
		}
		names := c.nameSlab[:0:need]
		c.nameSlab = c.nameSlab[need:]
		gang := int32(len(c.exclG))
		c.exclG = append(c.exclG, exclRes{start: t, end: end, mem: r.Memory})
		for _, ni := range picked {
			c.commitExclusive(ni, gang)
			names = append(names, c.nodes[ni].name)
		}
		// The whole gang at once: one profile update, not one per node.
		agg.take(t, end, cpus, mem, 0)
		if b := c.busy[ci]; b != nil {
			b.markGang(c.clsPos, picked, t, end)
		} else {
			for _, ni := range picked {
				c.iv[ni].add(t, end)
			}
		}
		pl.reserved(j, reason, t, names)
		return true
	}
	pl.picked = picked
	pl.wait(j, reason, detailFor(reason))
	return false
}

// commitExclusive is commit for node ni's share of fast-path booking gang
// (c.exclG), every cpu of the node, chained in c.excl instead of entered in
// c.running. The caller updates the class's aggregate profile and busy
// steps (or interval index) once for the whole gang.
func (c *cluster) commitExclusive(ni int32, gang int32) {
	c.save(ni)
	n := &c.nodes[ni]
	if !n.reserved {
		c.unindex(ni)
		n.reserved = true
		c.index(ni)
	}
	if c.excl == nil {
		c.excl = make([]exclLink, 0, min(max(c.gangs, 64), 1<<20))
	}
	c.excl = append(c.excl, exclLink{gang: gang, next: n.excl})
	n.excl = int32(len(c.excl))
}
