package placement

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Preemption: a pending job that cannot start takes the resources of
// running jobs of strictly lower priority that allow it (Running.Preemptible).
// The victims are warned, checkpointed and requeued by the server, never
// just killed; the preemptor waits (ReasonPreempting) until their
// resources are free and then starts as usual, ahead of them since its
// priority is higher. Strictly lower priority is what rules out ping-pong:
// a requeued victim can never preempt its preemptor back.

// Preemption is a decision to stop running jobs so that a pending one can
// start.
type Preemption struct {
	JobID   uint64   // the preemptor
	Victims []uint64 // running jobs to warn, checkpoint and requeue, by id
	Nodes   []string // where the preemptor is to run, by name
	// LostGPUSeconds and LostCPUSeconds are the work the victims lose: what
	// they did since their last checkpoint (Running.Since).
	LostGPUSeconds, LostCPUSeconds float64
	Detail                         string // one line for humans
}

// ReasonPreempting: the job is preempting lower-priority jobs and starts
// once they have checkpointed and stopped.
const ReasonPreempting Reason = "Preempting"

// maxExhaustive is how many victims on one node are tried in every
// combination; past it the cheapest are added one by one.
const maxExhaustive = 10

// preemptState is the planner's view of the running jobs that could be
// preempted, built on the first blocked job of a pass.
type preemptState struct {
	running   []Running
	built     bool
	victims   []victim
	victimsOn map[int32][]int // node -> indices into victims
	nodes     []int32         // nodes with victims, in name order
	// freeLeft counts the victims being stopped that no preemptor has
	// claimed, minPaid the lowest priority of the others (not updated as
	// they are claimed: only ever too low). When neither can serve a job,
	// no node can, and preempt says so at once: with 1,000 cancelled jobs
	// stopping and 100,000 pending, every pending job went through every
	// node before (most of a pass's CPU).
	freeLeft int
	minPaid  int
	anyPaid  bool
	// failed remembers, per request, the highest priority that found no
	// victims: free resources only shrink during a pass and claims only
	// add up, and a job of lower priority has fewer victims, so the same
	// request at that priority or lower fails too, without a search.
	failed map[preemptKey]int
}

// preemptKey is what cheapestOn reads of a job besides its priority.
type preemptKey struct {
	kind   *kind
	cpus   int
	mem    int64
	gpus   int
	nodes  int
	nvlink bool
	share  float64
	wall   int64
}

// victim is a running job that may be preempted, as the planner sees it.
type victim struct {
	idx              int // in Snapshot.Running
	id               uint64
	prio             int
	free             bool // being stopped already: its resources come free at no cost
	taken            bool // claimed by a preemptor earlier in this pass
	lostGPU, lostCPU float64
}

// nodeVictims is the cheapest set of victims that lets the job run on one
// node.
type nodeVictims struct {
	node    int32
	victims []int // indices into planner.victims, cost order
	cand    candidate
	n       int // victims that are not free
	lostGPU float64
	lostCPU float64
}

// collectVictims lists, once per Plan, the running jobs that anyone could
// preempt (or that are being stopped already) and where they run.
func (pl *planner) collectVictims() {
	ps := &pl.pre
	if ps.built {
		return
	}
	ps.built = true
	ps.victimsOn = map[int32][]int{}
	ps.freeLeft, ps.anyPaid = 0, false
	ps.failed = map[preemptKey]int{}
	for ri := range ps.running {
		r := &ps.running[ri]
		if !r.Preemptible && !r.Stopping {
			continue
		}
		v := victim{idx: ri, id: r.JobID, prio: r.Priority, free: r.Stopping}
		if v.free {
			ps.freeLeft++
		} else if !ps.anyPaid || v.prio < ps.minPaid {
			ps.minPaid, ps.anyPaid = v.prio, true
		}
		since := r.Since.UnixNano()
		lost := 0.0
		if !r.Since.IsZero() && since < pl.c.now {
			lost = float64(pl.c.now-since) / float64(time.Second)
		}
		for _, a := range r.Nodes {
			v.lostCPU += lost * float64(len(a.CPUs))
			if a.GPUShare == 0 {
				v.lostGPU += lost * float64(len(a.GPUs))
			}
		}
		vi := len(ps.victims)
		ps.victims = append(ps.victims, v)
		for _, a := range r.Nodes {
			ni, ok := pl.c.find(a.Node)
			if !ok || slices.Contains(ps.victimsOn[int32(ni)], vi) {
				continue
			}
			if len(ps.victimsOn[int32(ni)]) == 0 {
				ps.nodes = append(ps.nodes, int32(ni))
			}
			ps.victimsOn[int32(ni)] = append(ps.victimsOn[int32(ni)], vi)
		}
	}
	slices.Sort(ps.nodes)
}

// preempt tries to make room for blocked job j by preempting running jobs
// of lower priority. It returns false when preemption cannot help (then
// the job reserves or waits as usual); true when j waits for victims to
// stop, chosen now or earlier.
func (pl *planner) preempt(j *Job, k *kind) bool {
	if len(pl.pre.running) == 0 {
		return false
	}
	pl.collectVictims()
	need := gangSize(j)
	if len(pl.pre.nodes) < need {
		return false
	}
	if !pl.c.searchEveryPreemption && pl.pre.freeLeft == 0 && (!pl.pre.anyPaid || pl.pre.minPaid >= j.Priority) {
		return false // cheapestOn would find nothing on any node
	}
	key := preemptKey{kind: k, cpus: j.PerNode.CPUs, mem: j.PerNode.Memory, gpus: j.PerNode.GPU.Count, nodes: need,
		nvlink: j.PerNode.GPU.NVLink, share: j.PerNode.GPU.Share, wall: int64(j.Walltime)}
	if p, ok := pl.pre.failed[key]; ok && j.Priority <= p && !pl.c.searchEveryPreemption {
		return false
	}
	var best []nodeVictims
	for _, ni := range pl.pre.nodes {
		n := &pl.c.nodes[ni]
		if n.state != NodeUp || n.reserved || !k.classOK[n.class] {
			continue // never delay a reservation of a job ahead in the queue
		}
		if nv, ok := pl.cheapestOn(ni, j, k); ok {
			best = append(best, nv)
		}
	}
	if len(best) < need {
		if p, ok := pl.pre.failed[key]; !ok || j.Priority > p {
			pl.pre.failed[key] = j.Priority
		}
		return false
	}
	// Fewest victims, then least work lost (GPU, then CPU), then the
	// usual rank of the node, then its name: deterministic.
	slices.SortFunc(best, func(a, b nodeVictims) int {
		if c := cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lostGPU, b.lostGPU); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lostCPU, b.lostCPU); c != 0 {
			return c
		}
		if c := a.cand.sc.compare(b.cand.sc); c != 0 {
			return c
		}
		return cmp.Compare(a.node, b.node)
	})
	chosen := best[:need]
	p := Preemption{JobID: j.ID}
	seen := map[int]bool{}
	for _, nv := range chosen {
		p.Nodes = append(p.Nodes, pl.c.nodes[nv.node].name)
		for _, vi := range nv.victims {
			v := &pl.pre.victims[vi]
			// Claimed: a later preemptor of this pass neither counts on
			// these resources nor stops these jobs again.
			if v.free && !v.taken {
				pl.pre.freeLeft--
			}
			v.taken = true
			if v.free || seen[vi] {
				continue
			}
			seen[vi] = true
			p.Victims = append(p.Victims, v.id)
			p.LostGPUSeconds += v.lostGPU
			p.LostCPUSeconds += v.lostCPU
		}
	}
	slices.Sort(p.Nodes)
	slices.Sort(p.Victims)
	if len(p.Victims) == 0 {
		// Jobs already being stopped free enough: wait for them.
		pl.wait(j, ReasonPreempting, "waiting for preempted jobs to checkpoint and stop")
		return true
	}
	ids := make([]string, len(p.Victims))
	for i, id := range p.Victims {
		ids[i] = strconv.FormatUint(id, 10)
	}
	p.Detail = fmt.Sprintf("preempting job(s) %s on %s (work lost since their last checkpoint: %.0f GPU-s, %.0f CPU-s)",
		strings.Join(ids, ","), strings.Join(p.Nodes, ","), p.LostGPUSeconds, p.LostCPUSeconds)
	pl.d.Preemptions = append(pl.d.Preemptions, p)
	pl.wait(j, ReasonPreempting, p.Detail)
	return true
}

// cheapestOn finds the fewest, cheapest victims on node ni whose resources,
// with what is free there now, let j run. Jobs already being stopped are
// always counted in, at no cost.
func (pl *planner) cheapestOn(ni int32, j *Job, k *kind) (nodeVictims, bool) {
	var free, paid []int
	for _, vi := range pl.pre.victimsOn[ni] {
		v := &pl.pre.victims[vi]
		switch {
		case v.taken:
		case v.free:
			free = append(free, vi)
		case v.prio < j.Priority:
			paid = append(paid, vi)
		}
	}
	if len(free) == 0 && len(paid) == 0 {
		return nodeVictims{}, false
	}
	slices.SortFunc(paid, func(a, b int) int {
		va, vb := &pl.pre.victims[a], &pl.pre.victims[b]
		if c := cmp.Compare(va.lostGPU, vb.lostGPU); c != 0 {
			return c
		}
		if c := cmp.Compare(va.lostCPU, vb.lostCPU); c != 0 {
			return c
		}
		return cmp.Compare(va.id, vb.id)
	})
	try := func(set []int) (nodeVictims, bool) {
		a := pl.availWithout(ni, free, set)
		cd, r := pl.c.fitOn(ni, a, j, k, true)
		if r != "" {
			return nodeVictims{}, false
		}
		nv := nodeVictims{node: ni, cand: cd, n: len(set), victims: append(slices.Clone(free), set...)}
		for _, vi := range set {
			nv.lostGPU += pl.pre.victims[vi].lostGPU
			nv.lostCPU += pl.pre.victims[vi].lostCPU
		}
		return nv, true
	}
	if len(paid) > maxExhaustive {
		// Too many to try every set: the cheapest first until it fits.
		for n := 0; n <= len(paid); n++ {
			if nv, ok := try(paid[:n]); ok {
				return nv, true
			}
		}
		return nodeVictims{}, false
	}
	// Every set of size 0, 1, 2, ...: the first size that fits holds the
	// fewest victims; within it, the cheapest set wins.
	for size := 0; size <= len(paid); size++ {
		var best nodeVictims
		found := false
		forEachSubset(len(paid), size, func(pick []int) {
			set := make([]int, len(pick))
			for i, p := range pick {
				set[i] = paid[p]
			}
			nv, ok := try(set)
			if ok && (!found || nv.lostGPU < best.lostGPU || nv.lostGPU == best.lostGPU && nv.lostCPU < best.lostCPU) {
				best, found = nv, true
			}
		})
		if found {
			return best, true
		}
	}
	return nodeVictims{}, false
}

// availWithout is node ni's free-now state with the resources of the
// victims sets given back (a job sharing a GPU gives back its CPUs and
// memory only: the GPU may still hold others).
func (pl *planner) availWithout(ni int32, sets ...[]int) avail {
	n := &pl.c.nodes[ni]
	a := n.availNow()
	mask := slices.Clone(n.freeCPU)
	for _, set := range sets {
		for _, vi := range set {
			r := &pl.pre.running[pl.pre.victims[vi].idx]
			for _, na := range r.Nodes {
				if na.Node != n.name {
					continue
				}
				for _, id := range na.CPUs {
					if p := n.cpuPos(id); p >= 0 {
						mask[p/64] |= 1 << (p % 64)
					}
				}
				a.mem += na.Memory
				if na.GPUShare == 0 {
					for _, id := range na.GPUs {
						if p := n.gpuPos(id); p >= 0 {
							a.gpus |= 1 << p
						}
					}
				}
			}
		}
	}
	a.cpuMask, a.cpus = mask, popcount(mask)
	return a
}

// forEachSubset calls f with every size-element subset of 0..n-1 in
// lexicographic order.
func forEachSubset(n, size int, f func([]int)) {
	pick := make([]int, size)
	var rec func(start, i int)
	rec = func(start, i int) {
		if i == size {
			f(pick)
			return
		}
		for x := start; x <= n-(size-i); x++ {
			pick[i] = x
			rec(x+1, i+1)
		}
	}
	rec(0, 0)
}
