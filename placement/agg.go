package placement

import (
	"cmp"
	"math/bits"
	"slices"
)

// The aggregate profile of a class is the total free cpus, memory and
// GPUs of its Up nodes as a step function of time from now on. A gang of
// need nodes can only start at t if every class it may use together has
// need times its share free at every instant of [t, t+walltime), so the
// profile gives a lower bound on a reservation's start without looking at
// a single node: reserve walks its steps and checks nodes only where the
// bound allows, and a job that no future step can hold costs nothing more.
// For identical single-resource nodes (the SWF machines) the bound is
// usually the answer. It is built on a pass's first reservation and kept
// up to date by commit, so the cost is per change, not per blocked job.
type aggProfile struct {
	built bool
	t     []int64 // t[0] = now; step i holds on [t[i], t[i+1])
	cpus  []int64
	mem   []int64
	gpus  []int64
}

// aggOf returns class ci's profile, building it on first use.
func (c *cluster) aggOf(ci int32) *aggProfile {
	if c.agg == nil {
		c.agg = make([]aggProfile, len(c.classes))
	}
	p := &c.agg[ci]
	if p.built {
		return p
	}
	p.built = true
	type ev struct {
		t              int64
		cpus, mem, gpu int64
	}
	var evs []ev
	var cpus, mem, gpus int64
	// Interchangeable nodes count once, times their number (group.go).
	us := c.units(ci, true, c.aggUnits[:0])
	c.aggUnits = us
	for _, u := range us {
		n := &c.nodes[u.rep]
		w := int64(u.n)
		cpus += w * int64(n.ncpu)
		mem += w * n.mem
		gpus += w * int64(len(n.gpus))
		for _, ai := range n.allocs {
			r := &c.running[ai]
			if r.end <= c.now {
				continue
			}
			dc, dg := w*int64(popcount(r.cpus)), w*int64(bits.OnesCount64(r.gpus))
			evs = append(evs, ev{max(r.start, c.now), -dc, -w * r.mem, -dg})
			if r.end != forever {
				evs = append(evs, ev{r.end, dc, w * r.mem, dg})
			}
		}
		for x := n.excl; x != 0; x = c.excl[x-1].next {
			e := &c.exclG[c.excl[x-1].gang]
			if e.end <= c.now {
				continue
			}
			dc := w * int64(n.ncpu)
			evs = append(evs, ev{max(e.start, c.now), -dc, -w * e.mem, 0})
			if e.end != forever {
				evs = append(evs, ev{e.end, dc, w * e.mem, 0})
			}
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return cmp.Compare(a.t, b.t) })
	p.t = append(p.t[:0], c.now)
	p.cpus, p.mem, p.gpus = append(p.cpus[:0], cpus), append(p.mem[:0], mem), append(p.gpus[:0], gpus)
	for _, e := range evs {
		last := len(p.t) - 1
		if e.t != p.t[last] {
			p.t = append(p.t, e.t)
			p.cpus, p.mem, p.gpus = append(p.cpus, p.cpus[last]), append(p.mem, p.mem[last]), append(p.gpus, p.gpus[last])
			last++
		}
		p.cpus[last] += e.cpus
		p.mem[last] += e.mem
		p.gpus[last] += e.gpu
	}
	return p
}

// split makes t a step boundary and returns its index.
func (p *aggProfile) split(t int64) int {
	i, found := slices.BinarySearch(p.t, t)
	if found {
		return i
	}
	p.t = slices.Insert(p.t, i, t)
	p.cpus = slices.Insert(p.cpus, i, p.cpus[i-1])
	p.mem = slices.Insert(p.mem, i, p.mem[i-1])
	p.gpus = slices.Insert(p.gpus, i, p.gpus[i-1])
	return i
}

// take books an allocation on the profile over [start, end).
func (p *aggProfile) take(start, end, cpus, mem, gpus int64) {
	start = max(start, p.t[0])
	if end <= start {
		return
	}
	i := p.split(start)
	j := len(p.t)
	if end != forever {
		j = p.split(end)
	}
	for ; i < j; i++ {
		p.cpus[i] -= cpus
		p.mem[i] -= mem
		p.gpus[i] -= gpus
	}
}

// mergeAgg sums the profiles of the classes a job may use into dst.
func mergeAgg(dst *aggProfile, ps []*aggProfile) *aggProfile {
	if len(ps) == 1 {
		return ps[0]
	}
	dst.t = dst.t[:0]
	for _, p := range ps {
		dst.t = append(dst.t, p.t...)
	}
	slices.Sort(dst.t)
	dst.t = slices.Compact(dst.t)
	n := len(dst.t)
	dst.cpus = append(dst.cpus[:0], make([]int64, n)...)
	dst.mem = append(dst.mem[:0], make([]int64, n)...)
	dst.gpus = append(dst.gpus[:0], make([]int64, n)...)
	for _, p := range ps {
		k := 0
		for i, t := range dst.t {
			for k+1 < len(p.t) && p.t[k+1] <= t {
				k++
			}
			dst.cpus[i] += p.cpus[k]
			dst.mem[i] += p.mem[k]
			dst.gpus[i] += p.gpus[k]
		}
	}
	return dst
}

// nextStartFrom returns the first step index at or after i from which the
// profile holds cpus, mem and gpus throughout [t, t+wall), or -1; a step
// short of them rules out every start up to it, so the scan is linear.
// Steps [i, okTo) are known to hold the amounts (okTo <= i: none known),
// and it also returns the end of the run of steps it found to hold them. Callers walking the starts one after another pass
// it back, so a window's steps are checked once in all, not once per
// start: a long walltime spans thousands of steps on a conservative pass.
func (p *aggProfile) nextStartFrom(i, okTo int, wall, cpus, mem, gpus int64) (int, int) {
	for i < len(p.t) {
		t := p.t[i]
		end := forever
		if t < forever-wall {
			end = t + wall
		}
		j := max(i, okTo)
		for ; j < len(p.t) && p.t[j] < end; j++ {
			if p.cpus[j] < cpus || p.mem[j] < mem || p.gpus[j] < gpus {
				break
			}
		}
		if j < len(p.t) && p.t[j] < end {
			i, okTo = j+1, j+1
			continue
		}
		return i, j
	}
	return -1, 0
}
