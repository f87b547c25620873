package placement

import (
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// The placer is a pipeline with extension points, in the spirit of the
// Kubernetes scheduling framework and Nomad's iterator stack:
//
//	QueueSorter  orders the pending jobs (default: PrioritySorter)
//	Filter       says whether a node can take one node's share of a job,
//	             after the built-in resource fit
//	Scorer       ranks the nodes that can
//	Depth        how many blocked jobs a pass reserves for
//
// Plan stays a pure function: plugins get values, not the cluster, and
// must themselves be deterministic (no clocks, no I/O, no map order).
//
// The index, the early stop, the failure memo and the reservation fast
// paths are exact only under assumptions. A plugin states the ones it
// meets in Props; the planner uses a fast path only when every plugin
// that could change its answer declares what it needs. A plugin that
// declares nothing is asked about every node, one by one: slower, never
// wrong (TestUndeclaredPluginIsCorrect).

// Props are the properties a Filter or Scorer promises.
type Props uint8

const (
	// StateOnly: the answer depends only on the node's class (features,
	// capacity, GPU models and links) and its free resources, never on
	// its name. Interchangeable nodes are then asked once per state
	// (the bucket index) and reservation answers are reused while a
	// node's bookings do not change.
	StateOnly Props = 1 << iota
	// ShapeOnly: the answer depends on the job only through its shape
	// (features, GPU model and memory, CPUs, memory, GPU count and share,
	// gang size, walltime), not its id, user or priority.
	ShapeOnly
	// Monotone: a Filter that rejects a job on a node also rejects any
	// larger job of the same shape there once less is free; a Scorer never
	// gives a lower cost to the node with more free units of what the job
	// asks most of. Filters need it (with ShapeOnly) for the failure memo,
	// scorers for the search's early stop.
	Monotone
	// GPUJobsOnly: the plugin ignores jobs that ask for no GPU (a filter
	// passes them, a scorer costs them 0), so the CPU paths need not ask.
	GPUJobsOnly
)

// Has reports whether p includes every property of q.
func (p Props) Has(q Props) bool { return p&q == q }

// NodeView is what a Filter or Scorer sees of one node: its capacity, what
// is free, and the GPUs the job would get. GPU sets are bit masks over
// positions in GPUs (sorted by id). Slices belong to the placer: read only.
type NodeView struct {
	Name     string
	Features []string // sorted
	CPUs     int
	Memory   int64
	GPUs     []GPU
	Links    [][]resources.Link // Links[p][q] between positions p and q

	FreeCPUs   int
	FreeMemory int64
	FreeGPUs   uint64 // wholly free GPUs
	// GPUShareUsed[p] is the share (hundredths) of GPU p held by
	// sharing jobs; a GPU with some share used is not in FreeGPUs.
	GPUShareUsed []int16
	Whole        bool   // nothing runs here
	TakeGPUs     uint64 // the GPUs this job would get (0 for CPU jobs)
}

// Filter rejects nodes the built-in fit accepts, for a site's own rules.
type Filter interface {
	Name() string
	Props() Props
	Filter(j *Job, n *NodeView) bool // true: the node may take the job
}

// Scorer ranks the nodes that fit: lower cost is better. The costs of a
// policy's plugin scorers are summed and rank after the interconnect and
// the fragmentation tier of the Packing core, before its best-fit terms;
// equal ranks go to the lower node name.
type Scorer interface {
	Name() string
	Props() Props
	Cost(j *Job, n *NodeView, q *Queue) float64
}

// Packing is the placer's built-in ranking core: the best interconnect
// for the job's GPUs, keeping CPU work off GPU nodes, then best fit on
// free GPUs, on the dominant resource and on all resources (score.go).
// Without it every node ranks alike but for plugin costs, and GPUs are
// taken lowest id first.
type Packing struct {
	// SpareWholeNodes ranks a small GPU job's wholly free GPU nodes after
	// every other node that fits, before any plugin cost: a blunt guard
	// against breaking up large nodes for rankings without
	// GPUFragmentation, which weighs the same choice against what the
	// queue needs (and so leaves it off in DefaultScorers).
	SpareWholeNodes bool
}

// Name implements Scorer.
func (Packing) Name() string { return "packing" }

// Props implements Scorer.
func (Packing) Props() Props { return StateOnly | ShapeOnly | Monotone }

// Cost implements Scorer; the placer computes Packing's terms itself.
func (Packing) Cost(*Job, *NodeView, *Queue) float64 { return 0 }

// DefaultScorers is the ranking a policy with no Scorers uses. Adding a
// scorer to the default is one line here.
func DefaultScorers() []Scorer {
	return []Scorer{
		Packing{},
		GPUFragmentation{},
	}
}

// FirstFitScorers ranks nothing: the first node in name order that fits,
// and its lowest free GPU ids. A baseline for the simulator and tests.
func FirstFitScorers() []Scorer { return []Scorer{} }

// BestFitScorers is plain best fit on the dominant resource, a baseline
// for the simulator and tests.
func BestFitScorers() []Scorer { return []Scorer{LeastLeft{}} }

// Depth presets: how many blocked jobs of a pass get a reservation.
const (
	DepthFCFS = 0  // none; the first blocked job blocks the queue
	DepthEASY = 1  // the first blocked job; others backfill around it
	DepthAll  = -1 // conservative: every blocked job
)

// Depth returns the reservation depth of a named backfilling policy:
// fcfs 0, easy 1, conservative every blocked job.
func (b Backfill) Depth() (int, bool) {
	switch b {
	case FCFS:
		return DepthFCFS, true
	case EASY:
		return DepthEASY, true
	case Conservative:
		return DepthAll, true
	}
	return 0, false
}

// profile is a policy's plugins resolved for one Plan call, with the fast
// paths they allow.
type profile struct {
	packing    bool // the Packing core ranks
	spareWhole bool // ... with Packing.SpareWholeNodes
	filters    []Filter
	scorers    []Scorer // plugin scorers, Packing left out
	// Per job class (CPU job: 0, GPU job: 1): plugins that apply.
	filt [2][]Filter
	scor [2][]Scorer
	// Fast paths allowed, per job class.
	byState  [2]bool // bucket index: one answer per node state
	memo     [2]bool // failure memo
	stop     [2]bool // early stop in the search
	excl     bool    // conservative's exclusive reservations
	rsvCache bool    // reservation answers kept while bookings hold
}

func newProfile(p Policy) *profile {
	sc := p.Scorers
	if sc == nil {
		sc = DefaultScorers()
	}
	pr := &profile{filters: p.Filters}
	for _, s := range sc {
		if pk, ok := s.(Packing); ok {
			pr.packing, pr.spareWhole = true, pk.SpareWholeNodes
			continue
		}
		pr.scorers = append(pr.scorers, s)
	}
	for g := range 2 {
		pr.byState[g], pr.memo[g], pr.stop[g] = true, true, pr.packing
		for _, f := range pr.filters {
			if g == 0 && f.Props().Has(GPUJobsOnly) {
				continue
			}
			pr.filt[g] = append(pr.filt[g], f)
			pr.byState[g] = pr.byState[g] && f.Props().Has(StateOnly)
			pr.memo[g] = pr.memo[g] && f.Props().Has(ShapeOnly|Monotone)
		}
		for _, s := range pr.scorers {
			if g == 0 && s.Props().Has(GPUJobsOnly) {
				continue
			}
			pr.scor[g] = append(pr.scor[g], s)
			pr.byState[g] = pr.byState[g] && s.Props().Has(StateOnly)
			pr.stop[g] = pr.stop[g] && s.Props().Has(StateOnly|Monotone)
		}
	}
	pr.excl = len(pr.filters) == 0 && pr.byState[0]
	pr.rsvCache = true
	for _, f := range pr.filters {
		pr.rsvCache = pr.rsvCache && f.Props().Has(StateOnly)
	}
	return pr
}

// gi is the job class index into the profile's per-class lists.
func gi(j *Job) int {
	if j.PerNode.GPU.Count > 0 {
		return 1
	}
	return 0
}

// view fills v for node ni (or, for a StateOnly question, any node of
// its class) in free state a.
func (c *cluster) view(v *NodeView, ni int32, ci int32, busy bool, a avail, take uint64) {
	cl := &c.classes[ci]
	*v = NodeView{
		Features: cl.features, CPUs: cl.ncpu, Memory: cl.mem, GPUs: cl.gpus, Links: cl.links,
		FreeCPUs: a.cpus, FreeMemory: a.mem, FreeGPUs: a.gpus, GPUShareUsed: a.shares,
		Whole: !busy, TakeGPUs: take,
	}
	if ni >= 0 {
		v.Name = c.nodes[ni].name
	}
}

// plugins runs the profile's filters and scorers for j on a node view;
// ok false when a filter rejects it.
func (c *cluster) plugins(j *Job, ni, ci int32, busy bool, a avail, cd *candidate) bool {
	g := gi(j)
	fs, ss := c.prof.filt[g], c.prof.scor[g]
	if len(fs) == 0 && len(ss) == 0 {
		return true
	}
	v := &c.viewScratch
	c.view(v, ni, ci, busy, a, cd.gpus)
	for _, f := range fs {
		if !f.Filter(j, v) {
			return false
		}
	}
	cd.sc.ext = 0
	for _, s := range ss {
		cd.sc.ext += s.Cost(j, v, &c.queue)
	}
	return true
}

// QueueSorter orders the pending queue. Order returns the indices of jobs
// in the order they are considered; it must be a permutation that does not
// depend on the order of the slice.
type QueueSorter interface {
	Name() string
	Order(jobs []Job, now time.Time) []int32
}
