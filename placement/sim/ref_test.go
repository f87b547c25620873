package sim

import (
	"cmp"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// refPlan is a textbook FCFS / EASY placer for machines of single-CPU
// nodes and jobs of one CPU per node, written for these tests only: it
// lets the engine be checked against hand-computed answers independently
// of the real placer, and the real placer against it.
func refPlan(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
	busy := map[string]bool{}
	for _, r := range s.Running {
		for _, a := range r.Nodes {
			busy[a.Node] = true
		}
	}
	var free []string
	for _, n := range s.Nodes {
		if !busy[n.Name] {
			free = append(free, n.Name)
		}
	}
	slices.Sort(free)
	queue := slices.Clone(s.Pending)
	slices.SortStableFunc(queue, func(a, b placement.Job) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.Submit.Compare(b.Submit); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	var d placement.Decisions
	start := func(j placement.Job) {
		st := placement.Start{JobID: j.ID}
		for _, n := range free[:j.Nodes] {
			st.Nodes = append(st.Nodes, placement.NodeAlloc{Node: n, CPUs: []int{0}})
		}
		free = free[j.Nodes:]
		d.Starts = append(d.Starts, st)
	}
	i := 0
	for ; i < len(queue) && queue[i].Nodes <= len(free); i++ {
		start(queue[i])
	}
	if i == len(queue) {
		return d
	}
	head := queue[i]
	d.Waiting = append(d.Waiting, placement.Wait{JobID: head.ID, Reason: placement.ReasonResources})
	if p.Depth != placement.DepthEASY {
		for _, j := range queue[i+1:] {
			d.Waiting = append(d.Waiting, placement.Wait{JobID: j.ID, Reason: placement.ReasonPriority})
		}
		return d
	}
	// Shadow time: when enough nodes free up for the head, by walltimes;
	// extra: nodes left over at that time.
	ends := slices.Clone(s.Running)
	slices.SortFunc(ends, func(a, b placement.Running) int { return a.End.Compare(b.End) })
	avail := len(free)
	var shadow time.Time
	for _, r := range ends {
		avail += len(r.Nodes)
		if avail >= head.Nodes {
			shadow = r.End
			break
		}
	}
	extra := avail - head.Nodes
	for _, j := range queue[i+1:] {
		fits := j.Nodes <= len(free)
		short := !now.Add(j.Walltime).After(shadow)
		if fits && (short || j.Nodes <= extra) {
			if !short {
				extra -= j.Nodes
			}
			start(j)
			continue
		}
		d.Waiting = append(d.Waiting, placement.Wait{JobID: j.ID, Reason: placement.ReasonReservation})
	}
	return d
}
