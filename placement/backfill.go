package placement

import (
	"math"
	"slices"
	"time"
)

// Backfilling. Jobs are taken in queue order; one that cannot start now
// may get a reservation: the earliest time at which its whole gang fits,
// computed from the end times of what runs (and of what this pass
// started), with concrete cpus, memory and GPUs booked on chosen nodes
// from then until its walltime is over. Every later job may start now only
// where it fits for its whole walltime around those bookings, so it either
// ends before a reservation begins or uses resources the reservation does
// not need (the "extra nodes" rule, per resource rather than per node).
// EASY reserves for the first blocked job, conservative for every blocked
// job up to Policy.Depth; fcfs reserves nothing and stops at the first.

// reserve books the earliest start for a blocked job and records its wait.
// It returns false, recording a plain wait, when the job cannot be placed
// at any known time (some resource it needs is held with no end).
//
// The start is found by walking the steps of the aggregate free profile
// (agg.go) that could hold the gang, and at each checking nodes until
// need of them fit for the whole walltime. A node's answer is kept until
// the instant it can change (see probe), so each node is looked at about
// once per allocation boundary it has, however many steps are walked.
func (pl *planner) reserve(j *Job, k *kind, reason Reason) bool {
	c := pl.c
	if pl.p.Depth != DepthEASY && c.prof.excl {
		// EASY orders candidates by idle time, which the fast path does
		// not track; its one reservation per pass takes the general path.
		if ci, ok := c.exclusiveClass(j, k); ok {
			return pl.reserveExclusive(j, ci, reason)
		}
	}
	need := gangSize(j)
	r := &j.PerNode
	wall := forever
	if j.Walltime > 0 {
		wall = int64(j.Walltime)
	}
	ps := c.aggScratch[:0]
	for ci := range c.classes {
		if k.classOK[ci] && c.classes[ci].up > 0 {
			ps = append(ps, c.aggOf(int32(ci)))
		}
	}
	c.aggScratch = ps
	if len(ps) == 0 {
		pl.wait(j, reason, detailFor(reason))
		return false
	}
	agg := mergeAgg(&c.aggMerged, ps)
	if len(c.rsvHi) < len(c.nodes) {
		c.rsvHi = make([]int64, len(c.nodes))
		c.rsvOK = make([]bool, len(c.nodes))
	}
	// Interchangeable nodes are looked at once per group (group.go),
	// unless some plugin may tell them apart.
	grouped := c.prof.byState[gi(j)] && c.prof.rsvCache
	us := c.unitBuf[:0]
	for ci := range c.classes {
		if k.classOK[ci] {
			us = c.units(int32(ci), grouped, us)
		}
	}
	c.unitBuf = us
	for _, u := range us {
		c.rsvHi[u.rep] = math.MinInt64
	}
	n := int64(need)
	t, found := int64(0), false
	gpus := n * wholeGPUs(uint64(1)<<r.GPU.Count-1, shareOf(r))
	i, okTo := agg.nextStartFrom(0, 0, wall, n*int64(r.CPUs), n*r.Memory, gpus)
	for ; i >= 0; i, okTo = agg.nextStartFrom(i+1, okTo, wall, n*int64(r.CPUs), n*r.Memory, gpus) {
		if pl.countFit(j, k, us, agg.t[i], need) >= need {
			t, found = agg.t[i], true
			break
		}
	}
	if !found {
		pl.wait(j, reason, detailFor(reason))
		return false
	}
	end := c.endOf(j, t)
	byIdle := pl.p.Depth == DepthEASY
	// One candidate per unit (group or node), cd.node its rep.
	ucs, uix := pl.rcands[:0], pl.uix[:0]
	total := 0
	for ui, u := range us {
		if !pl.fitsAt(u.rep, j, k, t) {
			continue
		}
		a := c.availWindow(u.rep, t, end, c.scratchCPU(u.rep))
		cd, why := c.fitOn(u.rep, a, j, k, true)
		if why != "" {
			continue
		}
		var idle int64
		if byIdle {
			idle = c.idleBefore(u.rep, t, a.cpuMask, r.CPUs, cd.gpus)
		}
		ucs, uix = append(ucs, rcand{cd, idle}), append(uix, int32(ui))
		total += min(u.n, need)
	}
	pl.rcands, pl.uix = ucs, uix
	if total < need {
		pl.wait(j, reason, detailFor(reason)) // unreachable: countFit says they fit
		return false
	}
	// Conservative keeps name order after best fit: its reservations are
	// recomputed every pass, and choosing by idle time (which shifts as
	// jobs end) moves a job ahead onto nodes a later one was promised,
	// breaking reservations on the lublin trace (TestReservationsHoldOnTrace).
	picks := pl.pickUnits(us, need, byIdle)
	// The nodes leave the index at once and join the reserved list at
	// once, in name order: a gang of thousands of nodes costs linear
	// time, not quadratic.
	picked := pl.picked[:0]
	for _, pk := range picks {
		picked = append(picked, pk.node)
	}
	// Nodes are in name order (newCluster), so their indices sort as
	// their names, without comparing strings.
	slices.Sort(picked)
	c.unindexMany(picked)
	c.deferIndex, c.deferAgg = true, true
	// A unit's members have the same window: it is computed once, and the
	// aggregate profile takes the unit's bookings in one step.
	slices.SortStableFunc(picks, func(a, b unitPick) int { return int(a.cand) - int(b.cand) })
	for i := 0; i < len(picks); {
		x := picks[i].cand
		rep := ucs[x].cd.node
		a := c.availWindow(rep, t, end, c.scratchCPU(rep))
		h := i
		for ; h < len(picks) && picks[h].cand == x; h++ {
			c.commit(picks[h].node, t, end, a.cpuMask, j.PerNode, ucs[x].cd.gpus, false)
		}
		if cl := c.nodes[rep].class; c.agg != nil && c.agg[cl].built {
			w := int64(h - i)
			c.agg[cl].take(t, end, w*c.lastTaken, w*r.Memory, w*wholeGPUs(ucs[x].cd.gpus, shareOf(r)))
		}
		i = h
	}
	c.deferIndex, c.deferAgg = false, false
	c.indexMany(picked)
	pl.upicks = picks
	names := make([]string, len(picked))
	for i, ni := range picked {
		names[i] = c.nodes[ni].name
	}
	pl.picked = picked
	pl.reserved(j, reason, t, names)
	return true
}

// reserved records j's wait with its reservation from t on names.
func (pl *planner) reserved(j *Job, reason Reason, t int64, names []string) {
	at := time.Unix(0, t).In(pl.c.loc)
	if pl.detail == "" || pl.detT != t || pl.detR != reason {
		pl.detT, pl.detR = t, reason
		pl.detail = string(at.AppendFormat([]byte(detailFor(reason)+"; reserved from "), time.RFC3339))
	}
	pl.d.Waiting = append(pl.d.Waiting, Wait{
		JobID:         j.ID,
		Reason:        reason,
		Detail:        pl.detail,
		ReservedStart: at,
		ReservedNodes: names,
	})
}

// countFit counts Up nodes of the job's classes (given as units) that can
// hold its share for its whole walltime from t, stopping at need.
func (pl *planner) countFit(j *Job, k *kind, us []unit, t int64, need int) int {
	cnt := 0
	for _, u := range us {
		if pl.fitsAt(u.rep, j, k, t) {
			if cnt += u.n; cnt >= need {
				return cnt
			}
		}
	}
	return cnt
}

// fitsAt reports whether node ni can hold j's share over [t, t+walltime),
// reusing the node's last answer while it cannot have changed. Calls for
// one job come with t never decreasing.
func (pl *planner) fitsAt(ni int32, j *Job, k *kind, t int64) bool {
	c := pl.c
	if t < c.rsvHi[ni] {
		return c.rsvOK[ni]
	}
	end := c.endOf(j, t)
	// Filters run here too; the answer is kept only where they look at
	// nothing but the node's state (profile.rsvCache).
	_, why := c.fitOn(ni, c.availWindow(ni, t, end, c.scratchCPU(ni)), j, k, len(c.prof.filt[gi(j)]) > 0)
	if !c.prof.rsvCache {
		c.rsvHi[ni] = math.MinInt64
		return why == ""
	}
	nextEnd, nextStart := c.probe(ni, t, end)
	ok := why == ""
	c.rsvOK[ni] = ok
	switch {
	case !ok:
		// Sliding the start right only adds allocations to the window
		// until one of those in it ends.
		c.rsvHi[ni] = nextEnd
	case nextStart == forever || end == forever:
		c.rsvHi[ni] = forever
	default:
		// The window only loses allocations until its end reaches the
		// next one that starts after it.
		c.rsvHi[ni] = nextStart - (end - t) + 1
	}
	return ok
}

// probe returns, for the window [t0, t1) of node ni, the earliest end
// after t0 of an allocation overlapping it and the earliest start at or
// after t1 of one that does not yet (forever when none).
func (c *cluster) probe(ni int32, t0, t1 int64) (nextEnd, nextStart int64) {
	nextEnd, nextStart = forever, forever
	for _, ai := range c.nodes[ni].allocs {
		r := &c.running[ai]
		switch {
		case r.start >= t1:
			nextStart = min(nextStart, r.start)
		case r.end > t0:
			nextEnd = min(nextEnd, r.end)
		}
	}
	for x := c.nodes[ni].excl; x != 0; x = c.excl[x-1].next {
		e := &c.exclG[c.excl[x-1].gang]
		switch {
		case e.start >= t1:
			nextStart = min(nextStart, e.start)
		case e.end > t0:
			nextEnd = min(nextEnd, e.end)
		}
	}
	return nextEnd, nextStart
}

// rcand is a node that can hold a reservation, with how long the
// resources the reservation would take sit idle before it starts.
type rcand struct {
	cd   candidate
	idle int64
}

// idleBefore is how long before t the resources a reservation takes on
// node ni (the cpus positions of cpuFree commit would take (pickCPUs),
// and gpus) have been free: t minus the latest end of an allocation that
// holds any of them, or t minus now.
func (c *cluster) idleBefore(ni int32, t int64, cpuFree []uint64, cpus int, gpus uint64) int64 {
	if cap(c.takeScratch) < len(cpuFree) {
		c.takeScratch = make([]uint64, len(cpuFree))
	}
	take := c.takeScratch[:len(cpuFree)]
	clear(take)
	c.pickCPUs(ni, cpuFree, cpus, gpus, take)
	c.takeScratch = take
	since := c.now
	for _, ai := range c.nodes[ni].allocs {
		r := &c.running[ai]
		if r.end > t || r.end <= since {
			continue
		}
		hit := r.gpus&gpus != 0
		for w := 0; !hit && w < len(take); w++ {
			hit = r.cpus[w]&take[w] != 0
		}
		if hit {
			since = r.end
		}
	}
	// Fast-path reservations hold every cpu: they hit whenever a cpu is taken.
	taking := false
	for _, m := range take {
		taking = taking || m != 0
	}
	for x := c.nodes[ni].excl; taking && x != 0; x = c.excl[x-1].next {
		if e := &c.exclG[c.excl[x-1].gang]; e.end <= t && e.end > since {
			since = e.end
		}
	}
	return t - since
}

// bestReserve returns the first need candidates in sortReserve's order,
// in that order, leaving the others in cs unordered. EASY's one
// reservation is usually a small gang among thousands of nodes: keeping
// the need best in a bounded heap costs O(n log need) instead of sorting
// all n. The order is total (it ends on the node), so the result is the
// same as sorting everything and taking the first need.
func bestReserve(cs []rcand, need int, byIdle bool) []rcand {
	if need <= 0 {
		return cs[:0]
	}
	if out, ok := bestByRuns(cs, need, byIdle); ok {
		return out
	}
	if need*4 >= len(cs) {
		sortReserve(cs, byIdle)
		return cs[:need]
	}
	less := func(a, b *rcand) bool { return cmpReserve(a, b, byIdle) < 0 }
	// cs[:need] is a max-heap: its root is the worst of the best so far.
	h := cs[:need]
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			w := l
			if r := l + 1; r < len(h) && less(&h[l], &h[r]) {
				w = r
			}
			if !less(&h[i], &h[w]) {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for i := need; i < len(cs); i++ {
		if less(&cs[i], &h[0]) {
			h[0], cs[i] = cs[i], h[0]
			down(0)
		}
	}
	sortReserve(h, byIdle)
	return h
}

// sortReserve orders reservation candidates: the best interconnect and
// the fragmentation tier first, as for a start now; then the node whose
// resources would otherwise sit idle the least before the reserved start,
// so nodes that are free now (idle the longest) are taken last and stay
// free for backfill (EASY's "extra nodes"); then best fit, then name.
// byIdle off skips the idle step.
func sortReserve(cs []rcand, byIdle bool) {
	slices.SortFunc(cs, func(a, b rcand) int { return cmpReserve(&a, &b, byIdle) })
}

// bestByRuns is bestReserve for candidate lists made of long runs of
// nodes that rank the same but for their index (on a machine of identical
// nodes, the nodes free since one instant): candidates are listed class by
// class in node order, so such a run is already in order, and only the
// runs need sorting: O(n + r log r) for r runs. It reports false, doing
// nothing, when the runs are too many to be worth it.
func bestByRuns(cs []rcand, need int, byIdle bool) ([]rcand, bool) {
	type run struct{ lo, hi int }
	var runs []run
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && cs[j].cd.node > cs[j-1].cd.node && cmpRank(&cs[i], &cs[j], byIdle) == 0 {
			j++
		}
		if runs = append(runs, run{i, j}); len(runs)*8 > len(cs) {
			return nil, false
		}
		i = j
	}
	slices.SortFunc(runs, func(a, b run) int { return cmpReserve(&cs[a.lo], &cs[b.lo], byIdle) })
	out := make([]rcand, 0, need)
	for g := 0; g < len(runs) && len(out) < need; {
		h := g + 1
		for h < len(runs) && cmpRank(&cs[runs[g].lo], &cs[runs[h].lo], byIdle) == 0 {
			h++
		}
		from := len(out)
		for _, r := range runs[g:h] {
			out = append(out, cs[r.lo:r.hi]...)
		}
		if h-g > 1 {
			// Runs of one rank from different places: by node, as the
			// order's last step has it.
			grp := out[from:]
			slices.SortFunc(grp, func(a, b rcand) int { return int(a.cd.node) - int(b.cd.node) })
		}
		g = h
	}
	return out[:need], true
}

// cmpReserve is sortReserve's order.
func cmpReserve(a, b *rcand, byIdle bool) int {
	if c := cmpRank(a, b, byIdle); c != 0 {
		return c
	}
	return int(a.cd.node) - int(b.cd.node)
}

// cmpRank is sortReserve's order but for its last step, the node.
func cmpRank(a, b *rcand, byIdle bool) int {
	x, y := &a.cd.sc, &b.cd.sc
	if x.link != y.link {
		return int(y.link) - int(x.link)
	}
	if x.tier != y.tier {
		return int(x.tier) - int(y.tier)
	}
	if byIdle && a.idle != b.idle {
		if a.idle < b.idle {
			return -1
		}
		return 1
	}
	return x.compare(*y)
}
