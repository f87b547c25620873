package placement

import (
	"cmp"
	"math"
	"slices"
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
	for w := range cpuMask {
		cpuMask[w] = 0
	}
	for p := 0; p < n.ncpu; p++ {
		cpuMask[p/64] |= 1 << (p % 64)
	}
	a := avail{gpus: c.classes[n.class].allGPUs, cpuMask: cpuMask}
	for _, ai := range n.allocs {
		r := &c.running[ai]
		if r.start >= t1 || r.end <= t0 {
			continue
		}
		for w := range cpuMask {
			cpuMask[w] &^= r.cpus[w]
		}
		a.gpus &^= r.gpus
	}
	// Memory is fungible, so what matters is its peak use over the window,
	// reached at the window's start or when some allocation starts in it.
	peak := c.memUsedAt(n, t0)
	for _, ai := range n.allocs {
		if r := &c.running[ai]; r.start > t0 && r.start < t1 {
			peak = max(peak, c.memUsedAt(n, r.start))
		}
	}
	a.cpus = popcount(cpuMask)
	a.mem = n.mem - peak
	return a
}

// memUsedAt sums the memory of n's allocations that hold it at instant t.
func (c *cluster) memUsedAt(n *node, t int64) int64 {
	var used int64
	for _, ai := range n.allocs {
		if r := &c.running[ai]; r.start <= t && r.end > t {
			used += r.mem
		}
	}
	return used
}

// window is a span of start times [from, to) at which a job fits a node
// for its whole walltime.
type window struct {
	node     int32
	from, to int64
}

// startWindows appends to ws the start times at or after now at which j
// fits node ni for its whole walltime. Feasibility only improves when some
// allocation ends, so the candidate starts are now and those ends; from
// each it lasts until an allocation starting later gets in the way. When
// earliestOnly is set it stops at the first window (enough for one node).
func (c *cluster) startWindows(ws []window, ni int32, j *Job, k *kind, earliestOnly bool, before int64) []window {
	n := &c.nodes[ni]
	pts := c.pointScratch[:0]
	pts = append(pts, c.now)
	for _, ai := range n.allocs {
		if e := c.running[ai].end; e > c.now && e != forever {
			pts = append(pts, e)
		}
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	c.pointScratch = pts
	mask := c.scratchCPU(ni)
	for i, t := range pts {
		if t > before {
			break
		}
		end := c.endOf(j, t)
		if _, r := c.fitOn(ni, c.availWindow(ni, t, end, mask), j, k, true); r != "" {
			continue
		}
		next := forever
		if i+1 < len(pts) {
			next = pts[i+1]
		}
		to := next
		if !earliestOnly && end != forever {
			// Allocations that start inside (end, next+walltime) join the
			// window as the start slides right; the first that no longer
			// leaves room ends the span.
			wall := end - t
			for _, ai := range c.startsBetween(ni, end, next, wall) {
				s := c.running[ai].start
				if _, r := c.fitOn(ni, c.availWindow(ni, t, s+1, mask), j, k, true); r != "" {
					to = min(to, s-wall+1)
					break
				}
			}
		}
		if n := len(ws); n > 0 && ws[n-1].node == ni && ws[n-1].to >= t {
			ws[n-1].to = max(ws[n-1].to, to)
		} else {
			ws = append(ws, window{ni, t, to})
		}
		if earliestOnly {
			break
		}
	}
	return ws
}

// startsBetween lists, by start time, allocations of node ni that start in
// [from, next+wall).
func (c *cluster) startsBetween(ni int32, from, next, wall int64) []int32 {
	out := c.allocScratch[:0]
	lim := forever
	if next != forever && next < forever-wall {
		lim = next + wall
	}
	for _, ai := range c.nodes[ni].allocs {
		if s := c.running[ai].start; s >= from && s < lim {
			out = append(out, ai)
		}
	}
	slices.SortFunc(out, func(a, b int32) int { return cmp.Compare(c.running[a].start, c.running[b].start) })
	c.allocScratch = out
	return out
}
