package placement

import (
	"math"
	"math/bits"
	"slices"
)

// Busy-node bitsets for the exclusive fast path. Checking nodes one by one
// costs a search per node per reservation (hundreds of nodes, millions of
// reservations on a conservative trace replay). For a class of at most
// maxBusyWords*64 nodes, busySteps keeps, as a step function of time, the
// set of nodes with some allocation at each instant. The nodes free over a
// window are then the Up nodes outside the union of the sets of the steps
// it overlaps, and the first need of them in name order are the lowest
// bits: the same nodes the node-by-node scan picks.

// maxBusyWords bounds the bitset width; larger classes scan node by node.
// Tests lower cluster.busyWords to compare the two.
const maxBusyWords = 16

type busySteps struct {
	w    int      // words per step
	t    []int64  // t[0] = math.MinInt64; step k holds on [t[k], t[k+1])
	bits []uint64 // len(t)*w: bit p of step k set: class node p is busy
	up   []uint64 // w words: class nodes that are Up
	or   []uint64 // scratch
}

// newBusySteps builds the profile of class ci from its interval index.
func (c *cluster) newBusySteps(ci int32) *busySteps {
	nodes := c.classes[ci].nodes
	w := (len(nodes) + 63) / 64
	if w > c.busyWords {
		return nil
	}
	if c.clsPos == nil {
		c.clsPos = make([]int32, len(c.nodes))
	}
	b := &busySteps{w: w, t: []int64{math.MinInt64}, bits: make([]uint64, w), up: make([]uint64, w), or: make([]uint64, w)}
	for p, ni := range nodes {
		c.clsPos[ni] = int32(p)
		if c.nodes[ni].state == NodeUp {
			b.up[p/64] |= 1 << (p % 64)
		}
		for _, ai := range c.nodes[ni].allocs {
			b.mark(int32(p), c.running[ai].start, c.running[ai].end)
		}
		for x := c.nodes[ni].excl; x != 0; x = c.excl[x-1].next {
			b.mark(int32(p), c.exclG[c.excl[x-1].gang].start, c.exclG[c.excl[x-1].gang].end)
		}
	}
	return b
}

// split makes x a step boundary and returns its step.
func (b *busySteps) split(x int64) int {
	k, found := slices.BinarySearch(b.t, x)
	if found {
		return k
	}
	// Step k-1 holds at x: the new step starts as its copy.
	b.t = slices.Insert(b.t, k, x)
	b.bits = slices.Grow(b.bits, b.w)[:len(b.bits)+b.w]
	copy(b.bits[(k+1)*b.w:], b.bits[k*b.w:])
	copy(b.bits[k*b.w:(k+1)*b.w], b.bits[(k-1)*b.w:k*b.w])
	return k
}

// mark records class node p busy over [start, end).
func (b *busySteps) mark(p int32, start, end int64) {
	if end <= start {
		return
	}
	i := b.split(start)
	j := len(b.t)
	if end != forever {
		j = b.split(end)
	}
	word, bit := int(p/64), uint64(1)<<(p%64)
	for k := i; k < j; k++ {
		b.bits[k*b.w+word] |= bit
	}
}

// markNode records a booking of node ni over [start, end) in its class's
// busy steps, or its interval index when the class has none: only the
// fast path's node search reads either, and it reads one of them.
func (c *cluster) markNode(ni int32, start, end int64) {
	if b := c.busy[c.nodes[ni].class]; b != nil {
		b.mark(c.clsPos[ni], start, end)
	} else {
		c.iv[ni].add(start, end)
	}
}

// markGang records nodes (all of the class) busy over [start, end).
func (b *busySteps) markGang(pos []int32, nodes []int32, start, end int64) {
	if end <= start {
		return
	}
	i := b.split(start)
	j := len(b.t)
	if end != forever {
		j = b.split(end)
	}
	mask := b.or
	clear(mask)
	for _, ni := range nodes {
		p := pos[ni]
		mask[p/64] |= 1 << (p % 64)
	}
	for k := i; k < j; k++ {
		s := b.bits[k*b.w : (k+1)*b.w]
		for x := range s {
			s[x] |= mask[x]
		}
	}
}

// pick appends to dst the first need Up class nodes (as class positions
// mapped to node indices) free throughout [t0, t1), or returns dst
// unchanged with fewer when there are not enough.
func (b *busySteps) pick(nodes []int32, t0, t1 int64, need int, dst []int32) []int32 {
	or := b.or
	clear(or)
	k, found := slices.BinarySearch(b.t, t0)
	if !found {
		k--
	}
	for ; k < len(b.t) && b.t[k] < t1; k++ {
		s := b.bits[k*b.w : (k+1)*b.w]
		for x := range or {
			or[x] |= s[x]
		}
	}
	cnt := 0
	for x := range or {
		or[x] = b.up[x] &^ or[x]
		cnt += bits.OnesCount64(or[x])
	}
	if cnt < need {
		return dst
	}
	for x := 0; x < len(or) && need > 0; x++ {
		for m := or[x]; m != 0 && need > 0; m &= m - 1 {
			dst = append(dst, nodes[x*64+bits.TrailingZeros64(m)])
			need--
		}
	}
	return dst
}

// busyOver reports, from the busy steps of node ni's class when the pass
// has built them, that some allocation on ni overlaps [t0, t1) and j takes
// every cpu of the node, so no window there can hold j's share: every
// allocation on the class holds a cpu (cpuless == 0). False means unknown;
// the caller then asks availWindow. This spares placeNow the walk of a
// reserved node's bookings on every conservative pass.
func (c *cluster) busyOver(ni int32, t0, t1 int64, j *Job) bool {
	ci := c.nodes[ni].class
	if c.busy == nil || c.busy[ci] == nil {
		return false
	}
	cl := &c.classes[ci]
	if cl.cpuless != 0 || j.PerNode.CPUs != cl.ncpu || cl.ncpu < 1 {
		return false
	}
	b := c.busy[ci]
	p := c.clsPos[ni]
	word, bit := int(p/64), uint64(1)<<(p%64)
	k, found := slices.BinarySearch(b.t, t0)
	if !found {
		k--
	}
	for ; k < len(b.t) && b.t[k] < t1; k++ {
		if b.bits[k*b.w+word]&bit != 0 {
			return true
		}
	}
	return false
}
