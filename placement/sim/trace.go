package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// SWFOptions chooses the machine, the window of jobs and the policy of an
// SWF replay.
type SWFOptions struct {
	Policy placement.Policy
	// Nodes is the machine size; 0 takes the header's MaxProcs, else its
	// MaxNodes, else the largest request in the file.
	Nodes int
	// From and Jobs select jobs From..From+Jobs-1 (0-based) of the sorted
	// jobs that were not skipped; Jobs 0 means all from From on.
	From, Jobs int
	// Plan is the placer; nil means placement.Plan on a kept
	// placement.State (Replay).
	Plan Planner
}

// swfNodeMemory is each single-CPU node's memory. SWF jobs ask for none
// (requested memory is rarely known and the literature ignores it), so
// any positive value works; it only keeps memory shares well defined.
const swfNodeMemory = 1 << 30

// MachineSize is the node count a replay of t uses when none is given:
// MaxProcs, else MaxNodes, else the largest request.
func MachineSize(t *Trace) int {
	switch {
	case t.Header.MaxProcs > 0:
		return t.Header.MaxProcs
	case t.Header.MaxNodes > 0:
		return t.Header.MaxNodes
	}
	n := 0
	for _, r := range t.Jobs {
		n = max(n, int(procs(r)))
	}
	return n
}

// procs is what a job asks for: P = max(allocated, requested).
func procs(r Record) int64 { return max(r.AllocProcs, r.ReqProcs) }

// SWFWorkload turns a trace into a replay under the conventions that make
// results comparable with the literature: jobs sorted by submit time (file
// order on ties), times relative to the first submit, N single-CPU nodes,
// a job asks for P = max(field 5, field 8) nodes with one CPU each, its
// estimate (the walltime Plan sees) is field 9 when positive, else its run
// time, and it runs for min(run time, estimate). Jobs with run time <= 0,
// P <= 0 or P > N are skipped and counted over the whole file, before the
// window From..From+count-1 of the remaining sorted jobs is taken (count 0:
// all the rest). Job ids are positions in the sorted kept list, plus one,
// so a job keeps its id whatever the window.
func SWFWorkload(t *Trace, n, from, count int) ([]placement.Node, []Job, int, error) {
	if n <= 0 {
		n = MachineSize(t)
	}
	if n <= 0 {
		return nil, nil, 0, fmt.Errorf("sim: machine size unknown: the header gives neither MaxProcs nor MaxNodes and no job asks for processors; pass the node count")
	}
	if from < 0 || count < 0 {
		return nil, nil, 0, fmt.Errorf("sim: negative window (from %d, jobs %d)", from, count)
	}
	kept := make([]Record, 0, len(t.Jobs))
	skipped := 0
	for _, r := range t.Jobs {
		p := procs(r)
		if r.Run <= 0 || p <= 0 || p > int64(n) {
			skipped++
			continue
		}
		kept = append(kept, r)
	}
	slices.SortStableFunc(kept, func(a, b Record) int { return cmp.Compare(a.Submit, b.Submit) })
	if from >= len(kept) {
		return nil, nil, skipped, fmt.Errorf("sim: --from %d is past the %d usable jobs of the trace", from, len(kept))
	}
	end := len(kept)
	if count > 0 {
		end = min(end, from+count)
	}
	first := kept[0].Submit
	jobs := make([]Job, 0, end-from)
	for i := from; i < end; i++ {
		r := kept[i]
		est := r.Run
		if r.ReqTime > 0 {
			est = r.ReqTime
		}
		jobs = append(jobs, Job{
			Job: placement.Job{
				ID:       uint64(i + 1),
				Priority: 100,
				Submit:   Epoch.Add(time.Duration(r.Submit-first) * time.Second),
				Nodes:    int(procs(r)),
				PerNode:  placement.Request{CPUs: 1},
				Walltime: time.Duration(est) * time.Second,
			},
			Run: time.Duration(min(r.Run, est)) * time.Second,
		})
	}
	nodes := make([]placement.Node, n)
	width := len(fmt.Sprint(n - 1))
	for i := range nodes {
		// Zero-padded names keep name order equal to index order, which
		// is the order first fit walks.
		nodes[i] = placement.Node{Name: fmt.Sprintf("n%0*d", width, i), CPUs: 1, Memory: swfNodeMemory}
	}
	return nodes, jobs, skipped, nil
}

// SimulateSWF replays a window of an SWF trace and summarizes it.
func SimulateSWF(t *Trace, o SWFOptions) (Result, error) {
	nodes, jobs, skipped, err := SWFWorkload(t, o.Nodes, o.From, o.Jobs)
	if err != nil {
		return Result{}, err
	}
	plan := o.Plan
	out, err := Replay(nodes, jobs, o.Policy, plan)
	if err != nil {
		return Result{}, err
	}
	return out.Summarize(skipped), nil
}
