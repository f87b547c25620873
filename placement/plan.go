package placement

import (
	"cmp"
	"math/bits"
	"slices"
	"time"
)

// Plan decides which pending jobs start now and where, and why the others
// wait. It is pure and deterministic: the same snapshot, time and policy
// give the same decisions whatever the order of the snapshot's slices.
func Plan(s Snapshot, now time.Time, p Policy) Decisions {
	return planWith(s, now, p, searchKnobs{busyWords: maxBusyWords})
}

// searchKnobs change how a pass searches, never what it decides: tests
// turn them to compare a fast path with the plain search it stands for.
type searchKnobs struct {
	busyWords             int  // the busy-steps width bound (exclbits.go); 0: the node-by-node scan
	searchEveryPreemption bool // no preemption shortcuts (preempt.go)
}

// planWith is Plan with the search knobs given.
func planWith(s Snapshot, now time.Time, p Policy, k searchKnobs) Decisions {
	c := newCluster(s, now, newProfile(p))
	c.busyWords, c.searchEveryPreemption = k.busyWords, k.searchEveryPreemption
	// The journal also tells which nodes the pass booked on (group.go);
	// the cluster is dropped after, so nothing is put back.
	c.beginPass()
	return c.plan(s.Pending, s.Running, now, p)
}

// plan runs one pass over the cluster as it stands (c.now, c.prof set):
// the one body behind Plan and State.Plan, now being c.now. running is the running jobs
// the cluster holds, for preemption.
func (c *cluster) plan(pending []Job, running []Running, now time.Time, p Policy) Decisions {
	// c.running is not pre-sized for conservative's bookings: fast-path
	// reservations (excl.go) never enter it, and clearing room for every
	// pending gang cost more per pass than appending does.
	if len(c.prof.scorers) > 0 {
		c.queue = queueShapes(pending, running)
	}
	if p.Depth != DepthFCFS && p.Depth != DepthEASY {
		// Every blocked job may book its gang: the most bookings a pass
		// can make, for sizing the fast path's lists once (excl.go).
		for i := range pending {
			c.gangs += gangSize(&pending[i])
		}
	}
	pl := &planner{c: c, p: p, jobs: pending, pre: preemptState{running: running}}
	pl.d.Waiting = make([]Wait, 0, len(pending))
	pl.run(queueOrder(pending, now, p))
	return pl.d
}

// planner carries one Plan call through the queue.
type planner struct {
	c    *cluster
	p    Policy
	jobs []Job
	d    Decisions
	pre  preemptState // preempt.go

	cands  []candidate // scratch
	rcands []rcand     // scratch
	picked []int32     // scratch
	uix    []int32     // reserve's: unit of each rcands entry
	uorder []int32     // pickUnits' scratch
	upicks []unitPick  // pickUnits' scratch

	// The last reservation detail built: reservations of one pass often
	// share a start, and formatting the time is most of their cost.
	detT   int64
	detR   Reason
	detail string
}

func (pl *planner) run(order []int32) {
	blocked := false // depth 0: a job could not start, nothing behind it may
	reservations := 0
	for _, ji := range order {
		j := &pl.jobs[ji]
		k := pl.c.kindOf(j)
		if r, d := pl.c.staticCheck(j, k, true); r != "" {
			// Never startable on the nodes that are up: it waits, but it
			// neither blocks the queue nor holds a reservation.
			pl.wait(j, r, d)
			continue
		}
		if blocked {
			pl.wait(j, ReasonPriority, "a job ahead in the queue is waiting")
			continue
		}
		cands, reason := pl.placeNow(j, k)
		if reason == "" {
			pl.start(j, k, cands)
			continue
		}
		if pl.preempt(j, k) {
			// It waits for lower-priority jobs to checkpoint and stop
			// (preempt.go); under FCFS nothing behind it may start.
			blocked = pl.p.Depth == DepthFCFS
			continue
		}
		switch d := pl.p.Depth; {
		case d == DepthFCFS:
			blocked = true
			pl.wait(j, reason, detailFor(reason))
		case d > 0 && reservations >= d:
			pl.wait(j, reason, detailFor(reason))
		default:
			if pl.reserve(j, k, reason) {
				reservations++
			}
		}
	}
}

func detailFor(r Reason) string {
	switch r {
	case ReasonResources:
		return "not enough free resources now"
	case ReasonGPUTopology:
		return "matching GPUs are free, but no set of them is all NVLink-connected"
	case ReasonReservation:
		return "would delay a job that holds a reservation"
	}
	return string(r)
}

func (pl *planner) wait(j *Job, r Reason, detail string) {
	pl.d.Waiting = append(pl.d.Waiting, Wait{JobID: j.ID, Reason: r, Detail: detail})
}

// placeNow looks for gangSize(j) nodes that can start j now without
// delaying any reservation. On failure the reason is Reservation when the
// job fits but only by taking reserved resources, GPUTopology when only
// the NVLink requirement stands in the way, else Resources.
func (pl *planner) placeNow(j *Job, k *kind) ([]candidate, Reason) {
	c := pl.c
	need := gangSize(j)
	end := c.endOf(j, c.now)
	// With reservations about, whether a job fits depends on how long it
	// runs; without, it does not.
	wall := int64(0)
	if len(c.reservedNodes) > 0 {
		wall = end - c.now
	}
	memo := pl.c.prof.memo[gi(j)]
	if r, ok := k.failed(j, wall); memo && ok {
		return nil, r
	}
	// Known not to fit around the reservations (blocked.go): only the
	// reason is left to find, from the free-now state alone.
	known := memo && k.blockedBy(j, wall)
	cands := pl.cands[:0]
	var best candidate
	found := 0 // nodes that fit, counting every node of a fitting bucket
	ignoringRes, topo := 0, 0
	// CPU-only classes first: a CPU job that fits one never goes to a GPU
	// node (tierGPUNode), so those need no look once it has enough.
	for pass := 0; pass < 2; pass++ {
		for ci := range c.classes {
			if !k.classOK[ci] || (len(c.classes[ci].gpus) > 0) != (pass == 1) {
				continue
			}
			cands = pl.searchClass(int32(ci), j, k, need, cands, &best, &found, &topo)
		}
		// Exact only when the Packing core ranks: its tier puts every
		// CPU-only node before every GPU node for a CPU job.
		if found >= need && j.PerNode.GPU.Count == 0 && c.prof.packing {
			break
		}
	}
	ignoringRes = found
	// A reserved node can only take the job if its free-now state can,
	// so nodes with no cpu or GPU free are not even looked at (with
	// conservative backfill nearly every node holds a reservation).
	reserved := c.reservedFree
	if r := &j.PerNode; r.CPUs == 0 && r.GPU.Count == 0 {
		reserved = c.reservedNodes
	}
	// Nodes whose GPUs are partly shared are out of the index too (their
	// share levels would split it into countless states): one by one.
	// Their free-now state is all there is to them.
	sharing := shareOf(&j.PerNode) > 0
	for _, ni := range c.sharedNodes {
		n := &c.nodes[ni]
		if !c.mayFitNow(n, j, k, sharing) {
			continue
		}
		cd, r := c.fitOn(ni, n.availNow(), j, k, true)
		if r == "" {
			ignoringRes++
		}
		cands = offer(cd, r, need, &best, cands, &found, &topo)
	}
	for _, ni := range reserved {
		n := &c.nodes[ni]
		if !c.mayFitNow(n, j, k, sharing) {
			continue
		}
		// With no GPU asked for, fitState fails only on the class, cpus
		// or memory, all checked above: the free-now state fits.
		if j.PerNode.GPU.Count > 0 {
			if _, r := c.fitOn(ni, n.availNow(), j, k, true); r == "" {
				ignoringRes++
			}
		} else {
			ignoringRes++
		}
		if known {
			continue
		}
		if c.busyOver(ni, c.now, end, j) {
			continue // availWindow would leave too few cpus: Resources
		}
		cd, r := c.fitOn(ni, c.availWindow(ni, c.now, end, c.scratchCPU(ni)), j, k, true)
		cands = offer(cd, r, need, &best, cands, &found, &topo)
	}
	pl.cands = cands
	if found < need {
		reason := ReasonResources
		switch {
		case ignoringRes >= need:
			reason = ReasonReservation
		case found+topo >= need:
			reason = ReasonGPUTopology
		}
		if memo {
			k.remember(j, wall, reason)
			if reason == ReasonReservation {
				k.block(j, wall)
			}
		}
		return nil, reason
	}
	if need == 1 {
		pl.cands = append(cands[:0], best)
		return pl.cands, ""
	}
	sortCandidates(cands)
	return cands[:need], ""
}

// mayFitNow is the cheap look at node n's free-now state before fitOn:
// the class, cpus and memory, and for whole GPUs enough compatible free
// ones.
func (c *cluster) mayFitNow(n *node, j *Job, k *kind, sharing bool) bool {
	r := &j.PerNode
	return k.classOK[n.class] && n.nFreeCPU >= r.CPUs && n.freeMem >= r.Memory &&
		(sharing || bits.OnesCount64(n.freeGPU&k.compat[n.class]) >= r.GPU.Count)
}

// offer counts one node's answer for j: a fit becomes the best (one node
// wanted) or joins cands, and counts as found; a topology miss counts in
// topo.
func offer(cd candidate, why Reason, need int, best *candidate, cands []candidate, found, topo *int) []candidate {
	switch why {
	case "":
		if need == 1 {
			if *found == 0 || better(cd, *best) {
				*best = cd
			}
		} else {
			cands = append(cands, cd)
		}
		*found++
	case ReasonGPUTopology:
		*topo++
	}
	return cands
}

// better orders candidates: by score, then by name.
func better(a, b candidate) bool {
	if c := a.sc.compare(b.sc); c != 0 {
		return c < 0
	}
	return a.node < b.node
}

func sortCandidates(cs []candidate) {
	slices.SortFunc(cs, func(a, b candidate) int {
		if c := a.sc.compare(b.sc); c != 0 {
			return c
		}
		return int(a.node) - int(b.node)
	})
}

// start commits j on the chosen nodes and records the decision.
func (pl *planner) start(j *Job, k *kind, cands []candidate) {
	c := pl.c
	end := c.endOf(j, c.now)
	st := Start{JobID: j.ID, Nodes: make([]NodeAlloc, 0, len(cands))}
	// A gang leaves the index at once and joins it at once (index.go):
	// node by node, thousands of nodes cost quadratic time.
	var gang []int32
	if len(cands) > 1 {
		gang = pl.picked[:0]
		for _, cd := range cands {
			gang = append(gang, cd.node)
		}
		c.unindexMany(gang)
		c.deferIndex = true
	}
	for _, cd := range cands {
		n := &c.nodes[cd.node]
		a := n.availNow()
		if n.reserved {
			a = c.availWindow(cd.node, c.now, end, c.scratchCPU(cd.node))
		}
		na := c.commit(cd.node, c.now, end, a.cpuMask, j.PerNode, cd.gpus, true)
		if sh := shareOf(&j.PerNode); sh > 0 {
			na.GPUShare = float64(sh) / 100
		}
		st.Nodes = append(st.Nodes, na)
	}
	if gang != nil {
		c.deferIndex = false
		slices.Sort(gang)
		c.indexMany(gang)
		pl.picked = gang
	}
	slices.SortFunc(st.Nodes, func(a, b NodeAlloc) int { return cmp.Compare(a.Node, b.Node) })
	pl.d.Starts = append(pl.d.Starts, st)
}

// endOf is when j would end if started at t: its walltime, or never when
// it has none.
func (c *cluster) endOf(j *Job, t int64) int64 {
	if j.Walltime <= 0 || t > forever-int64(j.Walltime) {
		return forever
	}
	return t + int64(j.Walltime)
}

func (n *node) availNow() avail {
	return avail{cpus: n.nFreeCPU, mem: n.freeMem, gpus: n.freeGPU, shares: n.share, cpuMask: n.freeCPU}
}

// commit books req on node ni over [start, end): the lowest cpu positions
// of cpuFree, the memory and the GPU set. now says whether it runs from
// now (it leaves the free-now state) or is a reservation (only the
// node's time profile holds it).
func (c *cluster) commit(ni int32, start, end int64, cpuFree []uint64, req Request, gpus uint64, now bool) NodeAlloc {
	c.save(ni)
	n := &c.nodes[ni]
	// A further reservation on a reserved node changes neither its free-now
	// state nor its place in the index (conservative books thousands).
	reindex := (now || !n.reserved) && !c.deferIndex
	if reindex {
		c.unindex(ni)
	}
	sh := shareOf(&req)
	ra := runAlloc{node: ni, start: start, end: end, mem: req.Memory, gpus: gpus, share: sh, cpus: c.cpuWords(len(n.freeCPU))}
	// A reservation's NodeAlloc is never read: only build it for starts.
	var na NodeAlloc
	if now {
		na = NodeAlloc{Node: n.name, Memory: req.Memory, CPUs: make([]int, 0, req.CPUs)}
	}
	left := req.CPUs - c.pickCPUs(ni, cpuFree, req.CPUs, gpus, ra.cpus)
	if now {
		for w, m := range ra.cpus {
			for ; m != 0; m &= m - 1 {
				na.CPUs = append(na.CPUs, n.cpuID(w*64+bits.TrailingZeros64(m)))
			}
		}
	}
	for m := gpus; now && m != 0; m &= m - 1 {
		na.GPUs = append(na.GPUs, n.gpus[bits.TrailingZeros64(m)].ID)
	}
	if req.CPUs-left == 0 {
		c.classes[n.class].cpuless++
	}
	if c.ivBuilt != nil && c.ivBuilt[n.class] {
		c.markNode(ni, start, end)
	}
	c.lastTaken = int64(req.CPUs - left)
	if c.agg != nil && c.agg[n.class].built && !c.deferAgg {
		c.agg[n.class].take(start, end, int64(req.CPUs-left), req.Memory, wholeGPUs(gpus, sh))
	}
	if now {
		for w := range ra.cpus {
			n.freeCPU[w] &^= ra.cpus[w]
		}
		n.nFreeCPU -= req.CPUs
		n.freeMem -= req.Memory
		if sh > 0 {
			n.addShare(gpus, sh)
		}
		n.freeGPU &^= gpus
		n.busy = true
	} else {
		n.reserved = true
	}
	n.allocs = append(n.allocs, int32(len(c.running)))
	c.running = append(c.running, ra)
	if reindex {
		c.index(ni)
	}
	return na
}

// wholeGPUs is how many whole GPUs an allocation counts for in the
// aggregate profile: none for a sharing one, whose GPU may hold others.
// The profile is a bound on what is free, and stays one.
func wholeGPUs(gpus uint64, share int16) int64 {
	if share > 0 {
		return 0
	}
	return int64(bits.OnesCount64(gpus))
}
