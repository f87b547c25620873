package placement

import (
	"cmp"
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
func (pl *planner) reserve(j *Job, k *kind, reason Reason) bool {
	c := pl.c
	need := gangSize(j)
	ws := c.windows[:0]
	best := forever
	for ci := range c.classes {
		if !k.classOK[ci] {
			continue
		}
		for _, ni := range c.classes[ci].nodes {
			if c.nodes[ni].state != NodeUp {
				continue
			}
			if need == 1 {
				// One node: only its earliest window matters, and none
				// later than the best found so far.
				before := len(ws)
				ws = c.startWindows(ws, ni, j, k, true, best)
				if len(ws) > before {
					best = min(best, ws[len(ws)-1].from)
				}
				continue
			}
			ws = c.startWindows(ws, ni, j, k, false, forever)
		}
	}
	c.windows = ws
	t, ok := earliestCommon(ws, need)
	if !ok {
		pl.wait(j, reason, detailFor(reason))
		return false
	}
	end := c.endOf(j, t)
	cands := pl.cands[:0]
	for _, w := range ws {
		if w.from <= t && t < w.to {
			a := c.availWindow(w.node, t, end, c.scratchCPU(w.node))
			if cd, r := c.fitOn(w.node, a, j, k, pl.p.FirstFit); r == "" {
				cands = append(cands, cd)
			}
		}
	}
	pl.cands = cands
	if len(cands) < need {
		pl.wait(j, reason, detailFor(reason)) // unreachable: the windows say they fit
		return false
	}
	sortCandidates(cands)
	names := make([]string, 0, need)
	for _, cd := range cands[:need] {
		a := c.availWindow(cd.node, t, end, c.scratchCPU(cd.node))
		c.commit(cd.node, t, end, a.cpuMask, j.PerNode, cd.gpus, false)
		names = append(names, c.nodes[cd.node].name)
	}
	slices.Sort(names)
	at := time.Unix(0, t).In(c.loc)
	pl.d.Waiting = append(pl.d.Waiting, Wait{
		JobID:         j.ID,
		Reason:        reason,
		Detail:        detailFor(reason) + "; reserved from " + at.Format(time.RFC3339),
		ReservedStart: at,
		ReservedNodes: names,
	})
	return true
}

// earliestCommon is the first instant covered by need windows of distinct
// nodes (each node's windows never overlap one another).
func earliestCommon(ws []window, need int) (int64, bool) {
	if need == 1 {
		t, ok := forever, false
		for _, w := range ws {
			if w.from < t {
				t, ok = w.from, true
			}
		}
		return t, ok
	}
	type event struct {
		t     int64
		delta int
	}
	ev := make([]event, 0, 2*len(ws))
	for _, w := range ws {
		ev = append(ev, event{w.from, +1})
		if w.to != forever {
			ev = append(ev, event{w.to, -1})
		}
	}
	// Windows are half open: one that ends at t no longer counts at t.
	slices.SortFunc(ev, func(a, b event) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.delta, b.delta)
	})
	cnt := 0
	for i, e := range ev {
		cnt += e.delta
		if cnt >= need && (i+1 == len(ev) || ev[i+1].t != e.t) {
			return e.t, true
		}
	}
	return 0, false
}
