// Package sim replays workloads through the placer with virtual time: a
// Standard Workload Format (SWF) trace on a machine of single-CPU nodes,
// or a generated GPU workload on a heterogeneous cluster. It calls the very
// placement.Plan the daemon calls, one pass per instant at which a job
// arrived or ended, and reports the scheduling-quality figures the
// literature uses (wait, bounded slowdown, utilisation).
//
// The simulator never reads the clock for its own time; time.Now is only
// used to report how long the simulation itself took (Result.Wall).
package sim

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// Epoch is virtual time zero: the first submit of a trace happens here.
// A fixed date keeps every run of a replay bit-for-bit the same.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Planner has placement.Plan's signature, so tests can cross-check the
// engine against a reference placer and the command can swap nothing.
type Planner func(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions

// Job is one job of a replay: what Plan sees, and how long it really runs.
type Job struct {
	placement.Job
	// Run is the time the job holds its resources, at most Walltime; the
	// placer only ever learns Walltime, as in production.
	Run time.Duration
}

// Placement is where and when a replayed job ran.
type Placement struct {
	Start time.Time
	End   time.Time // Start + Run
	Nodes []placement.NodeAlloc
}

// Outcome is a finished replay: Placed[i] belongs to Jobs[i].
type Outcome struct {
	Nodes     []placement.Node
	Jobs      []Job
	Placed    []Placement
	PlanCalls int
	Wall      time.Duration
	// Frag is the GPU fragmentation after every pass that changed it
	// (frag.go); empty on clusters without GPUs.
	Frag []FragPoint
}

// Replay runs jobs on nodes to completion. plan nil runs the daemon's own
// placer on a kept placement.State, updated by each start and end, so a
// pass costs what changed; a Planner is called on a whole Snapshot each
// pass (tests cross-check the engine with reference placers this way). At each instant where something
// happens, jobs that end release their resources first, then jobs
// submitted at that instant join the queue, then Plan runs once and its
// starts take effect at that instant. Every start is checked against the
// free resources (CPU ids, memory, GPU ids, gang size), so a placer bug
// shows up as an error naming the job, the node and the virtual time
// instead of a silently wrong figure. Replay fails if jobs remain pending
// with nothing left to happen (the placer would wait forever).
func Replay(nodes []placement.Node, jobs []Job, pol placement.Policy, plan Planner) (*Outcome, error) {
	wallStart := time.Now()
	var kept *placement.State
	if plan == nil {
		kept = placement.NewState(nodes, nil)
		plan = func(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
			return kept.Plan(s.Pending, now, p)
		}
	}
	st, err := newState(nodes, jobs)
	if err != nil {
		return nil, err
	}
	// Arrival order: submit time, then id (Plan's own tie-break).
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := jobs[a].Submit.Compare(jobs[b].Submit); c != 0 {
			return c
		}
		return cmp.Compare(jobs[a].ID, jobs[b].ID)
	})

	out := &Outcome{Nodes: nodes, Jobs: jobs, Placed: make([]Placement, len(jobs))}
	snap := placement.Snapshot{Nodes: nodes}
	var ends endHeap
	shapes := workloadShapes(jobs)
	hasGPUs := slices.ContainsFunc(nodes, func(n placement.Node) bool { return len(n.GPUs) > 0 })
	recordFrag := func(now time.Time) {
		if !hasGPUs {
			return
		}
		f, free := st.fragmentation(shapes)
		p := FragPoint{T: since(now), GPUs: f, Free: free}
		if free > 0 {
			p.Share = f / free
		}
		if k := len(out.Frag); k > 0 && out.Frag[k-1].T == p.T {
			out.Frag[k-1] = p
		} else if k == 0 || out.Frag[k-1].GPUs != p.GPUs || out.Frag[k-1].Free != p.Free {
			out.Frag = append(out.Frag, p)
		}
	}
	runPos := make([]int, len(jobs)) // index of a running job in snap.Running
	next := 0
	var now time.Time
	for next < len(order) || len(ends) > 0 {
		switch {
		case len(ends) == 0:
			now = jobs[order[next]].Submit
		case next == len(order):
			now = ends[0].at
		default:
			now = jobs[order[next]].Submit
			if ends[0].at.Before(now) {
				now = ends[0].at
			}
		}
		for len(ends) > 0 && ends[0].at.Equal(now) {
			e := heap.Pop(&ends).(endEvent)
			st.release(out.Placed[e.job].Nodes)
			if kept != nil {
				kept.End(jobs[e.job].ID)
			}
			// Swap-delete keeps the running list O(1) per end.
			p := runPos[e.job]
			last := len(snap.Running) - 1
			if p != last {
				moved := snap.Running[last]
				snap.Running[p] = moved
				runPos[st.index[moved.JobID]] = p
			}
			snap.Running[last] = placement.Running{}
			snap.Running = snap.Running[:last]
		}
		for next < len(order) && jobs[order[next]].Submit.Equal(now) {
			snap.Pending = append(snap.Pending, jobs[order[next]].Job)
			st.pending[order[next]] = true
			next++
		}
		if len(snap.Pending) == 0 {
			recordFrag(now)
			continue
		}
		dec := plan(snap, now, pol)
		out.PlanCalls++
		if len(dec.Starts) == 0 {
			recordFrag(now)
			continue
		}
		for _, s := range dec.Starts {
			i, err := st.take(s, now)
			if err != nil {
				return nil, err
			}
			j := &jobs[i]
			out.Placed[i] = Placement{Start: now, End: now.Add(j.Run), Nodes: s.Nodes}
			runPos[i] = len(snap.Running)
			snap.Running = append(snap.Running, placement.Running{JobID: j.ID, End: now.Add(j.Walltime), Nodes: s.Nodes})
			if kept != nil {
				kept.Start(snap.Running[len(snap.Running)-1])
			}
			heap.Push(&ends, endEvent{at: now.Add(j.Run), job: i})
		}
		// Drop the started jobs by their state rather than by position,
		// so nothing depends on the order Plan reported them in.
		kept := snap.Pending[:0]
		for _, pj := range snap.Pending {
			if st.pending[st.index[pj.ID]] {
				kept = append(kept, pj)
			}
		}
		clear(snap.Pending[len(kept):])
		snap.Pending = kept
		recordFrag(now)
	}
	if len(snap.Pending) > 0 {
		dec := plan(snap, now, pol)
		why := ""
		for _, w := range dec.Waiting {
			if w.JobID == snap.Pending[0].ID {
				why = fmt.Sprintf(" (%s: %s)", w.Reason, w.Detail)
			}
		}
		return nil, fmt.Errorf("sim: %d jobs still pending with nothing running or arriving; job %d never starts%s",
			len(snap.Pending), snap.Pending[0].ID, why)
	}
	out.Wall = time.Since(wallStart)
	return out, nil
}

// endEvent is a running job's real end; ties pop in job order so the
// replay is deterministic.
type endEvent struct {
	at  time.Time
	job int
}

type endHeap []endEvent

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(a, b int) bool {
	if !h[a].at.Equal(h[b].at) {
		return h[a].at.Before(h[b].at)
	}
	return h[a].job < h[b].job
}
func (h endHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(endEvent)) }
func (h *endHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// state is the simulator's own ledger of what is in use, independent of
// the placer's, so that every decision can be audited.
type state struct {
	jobs    []Job
	index   map[uint64]int // job id -> position in jobs
	node    map[string]int // node name -> position in nodes
	nodes   []placement.Node
	cpuUsed [][]bool      // per node, by CPU id
	memFree []int64       // per node
	cpuFree []int         // per node
	gpuUsed []map[int]int // per node, by GPU id: hundredths held (100: whole)
	pending []bool        // by job position: arrived and not started
}

func newState(nodes []placement.Node, jobs []Job) (*state, error) {
	st := &state{
		jobs: jobs, nodes: nodes,
		index:   make(map[uint64]int, len(jobs)),
		node:    make(map[string]int, len(nodes)),
		cpuUsed: make([][]bool, len(nodes)),
		memFree: make([]int64, len(nodes)),
		cpuFree: make([]int, len(nodes)),
		gpuUsed: make([]map[int]int, len(nodes)),
		pending: make([]bool, len(jobs)),
	}
	for i, n := range nodes {
		if _, dup := st.node[n.Name]; dup {
			return nil, fmt.Errorf("sim: node %q twice", n.Name)
		}
		st.node[n.Name] = i
		maxID := n.CPUs - 1
		for _, id := range n.CPUIDs {
			maxID = max(maxID, id)
		}
		st.cpuUsed[i] = make([]bool, maxID+1)
		st.memFree[i] = n.Memory
		st.cpuFree[i] = max(n.CPUs, len(n.CPUIDs))
		st.gpuUsed[i] = make(map[int]int, len(n.GPUs))
	}
	for i, j := range jobs {
		if _, dup := st.index[j.ID]; dup {
			return nil, fmt.Errorf("sim: job id %d twice", j.ID)
		}
		if j.Run <= 0 || j.Run > j.Walltime {
			return nil, fmt.Errorf("sim: job %d runs %v with walltime %v; want 0 < run <= walltime", j.ID, j.Run, j.Walltime)
		}
		st.index[j.ID] = i
	}
	return st, nil
}

// take books a start after checking it against the ledger.
func (st *state) take(s placement.Start, now time.Time) (int, error) {
	at := now.Sub(Epoch).Seconds()
	i, ok := st.index[s.JobID]
	if !ok || !st.pending[i] {
		return 0, fmt.Errorf("sim: t=%.0fs: Plan started job %d, which is not pending", at, s.JobID)
	}
	j := st.jobs[i]
	gang := max(j.Nodes, 1)
	if len(s.Nodes) != gang {
		return 0, fmt.Errorf("sim: t=%.0fs: Plan started job %d on %d nodes, it asks for %d", at, j.ID, len(s.Nodes), gang)
	}
	seen := make(map[int]bool, gang)
	for _, a := range s.Nodes {
		n, ok := st.node[a.Node]
		if !ok || seen[n] {
			return 0, fmt.Errorf("sim: t=%.0fs: Plan started job %d on unknown or repeated node %q", at, j.ID, a.Node)
		}
		seen[n] = true
		if len(a.CPUs) != j.PerNode.CPUs || len(a.GPUs) != j.PerNode.GPU.Count || a.Memory < j.PerNode.Memory {
			return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s got %d CPUs, %d GPUs, %d bytes; asked %d, %d, %d",
				at, j.ID, a.Node, len(a.CPUs), len(a.GPUs), a.Memory, j.PerNode.CPUs, j.PerNode.GPU.Count, j.PerNode.Memory)
		}
		if a.Memory > st.memFree[n] {
			return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s: memory over-allocated (%d free, %d taken)", at, j.ID, a.Node, st.memFree[n], a.Memory)
		}
		for _, c := range a.CPUs {
			if c < 0 || c >= len(st.cpuUsed[n]) || st.cpuUsed[n][c] {
				return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s: CPU %d missing or in use", at, j.ID, a.Node, c)
			}
		}
		use := gpuUse(a.GPUShare)
		if want := gpuUse(j.PerNode.GPU.Share); len(a.GPUs) > 0 && use != want && j.PerNode.GPU.Count == 1 {
			return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s got a share of %v, asked %v", at, j.ID, a.Node, a.GPUShare, j.PerNode.GPU.Share)
		}
		for _, g := range a.GPUs {
			if st.gpuUsed[n][g]+use > 100 || use == 100 && st.gpuUsed[n][g] > 0 || !hasGPU(st.nodes[n], g) {
				return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s: GPU %d missing or in use", at, j.ID, a.Node, g)
			}
		}
		// Book this node before checking the next, so a repeated CPU id
		// within one allocation is caught too.
		for _, c := range a.CPUs {
			if st.cpuUsed[n][c] {
				return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s: CPU %d given twice", at, j.ID, a.Node, c)
			}
			st.cpuUsed[n][c] = true
		}
		for _, g := range a.GPUs {
			if st.gpuUsed[n][g]+use > 100 {
				return 0, fmt.Errorf("sim: t=%.0fs: job %d on %s: GPU %d given twice", at, j.ID, a.Node, g)
			}
			st.gpuUsed[n][g] += use
		}
		st.memFree[n] -= a.Memory
		st.cpuFree[n] -= len(a.CPUs)
	}
	st.pending[i] = false
	return i, nil
}

// gpuUse is what an allocation holds of each of its GPUs, in hundredths:
// its share, or 100 for whole GPUs (share 0).
func gpuUse(share float64) int {
	if share <= 0 || share >= 1 {
		return 100
	}
	return int(share*100 + 0.5)
}

func hasGPU(n placement.Node, id int) bool {
	for _, g := range n.GPUs {
		if g.ID == id {
			return true
		}
	}
	return false
}

func (st *state) release(allocs []placement.NodeAlloc) {
	for _, a := range allocs {
		n := st.node[a.Node]
		for _, c := range a.CPUs {
			st.cpuUsed[n][c] = false
		}
		for _, g := range a.GPUs {
			if st.gpuUsed[n][g] -= gpuUse(a.GPUShare); st.gpuUsed[n][g] <= 0 {
				delete(st.gpuUsed[n], g)
			}
		}
		st.memFree[n] += a.Memory
		st.cpuFree[n] += len(a.CPUs)
	}
}

// Result is the summary of a replay, in the units and under the JSON keys
// that `hpcd simulate --json` prints.
type Result struct {
	Jobs    int     `json:"jobs"`
	Skipped int     `json:"skipped"`
	AvgWait float64 `json:"avg_wait_s"`
	MaxWait float64 `json:"max_wait_s"`
	// AvgResponse is the mean of wait + run.
	AvgResponse float64 `json:"avg_response_s"`
	// Throughput is jobs per hour of makespan.
	Throughput float64 `json:"throughput_per_h"`
	// AvgBoundedSlowdown is the mean of max(1, (wait+run)/max(run, 10s)).
	AvgBoundedSlowdown float64 `json:"avg_bounded_slowdown"`
	// Utilization is CPU-seconds used over CPU-seconds offered during the
	// makespan: Σ run·CPUs / (machine CPUs · makespan). On an SWF machine
	// of single-CPU nodes this is Σ run·P / (N · makespan).
	Utilization float64 `json:"utilization"`
	// Makespan runs from the first submit of the replayed jobs to the
	// last end.
	Makespan float64 `json:"makespan_s"`
	Wall     float64 `json:"wall_s"`
}

// BoundedSlowdownFloor is the run time below which a job's slowdown is
// computed as if it ran this long, so that tiny jobs don't dominate the
// mean (the common 10 s bound).
const BoundedSlowdownFloor = 10 * time.Second

// BoundedSlowdown is max(1, (wait+run)/max(run, 10s)).
func BoundedSlowdown(wait, run time.Duration) float64 {
	return max(1, (wait+run).Seconds()/max(run, BoundedSlowdownFloor).Seconds())
}

// Summarize computes the replay's figures; skipped is passed through.
func (o *Outcome) Summarize(skipped int) Result {
	r := Result{Jobs: len(o.Jobs), Skipped: skipped, Wall: o.Wall.Seconds()}
	if len(o.Jobs) == 0 {
		return r
	}
	first, last := o.Jobs[0].Submit, o.Placed[0].End
	var sumWait, sumBSLD, cpuSec, sumResp float64
	for i, j := range o.Jobs {
		p := o.Placed[i]
		wait := p.Start.Sub(j.Submit)
		sumWait += wait.Seconds()
		sumResp += (wait + j.Run).Seconds()
		r.MaxWait = max(r.MaxWait, wait.Seconds())
		sumBSLD += BoundedSlowdown(wait, j.Run)
		cpuSec += j.Run.Seconds() * float64(max(j.Nodes, 1)*j.PerNode.CPUs)
		if j.Submit.Before(first) {
			first = j.Submit
		}
		if p.End.After(last) {
			last = p.End
		}
	}
	n := float64(len(o.Jobs))
	r.AvgWait = sumWait / n
	r.AvgResponse = sumResp / n
	r.AvgBoundedSlowdown = sumBSLD / n
	r.Makespan = last.Sub(first).Seconds()
	if r.Makespan > 0 {
		r.Throughput = n / (r.Makespan / 3600)
	}
	var cpus float64
	for _, nd := range o.Nodes {
		cpus += float64(nd.CPUs)
	}
	if r.Makespan > 0 && cpus > 0 {
		r.Utilization = cpuSec / (cpus * r.Makespan)
	}
	return r
}
