package placement

import (
	"cmp"
	"slices"
	"time"
)

// PriorityWeights turn a job's priority factors into one number, as
// Slurm's multifactor plugin does: each factor is normalised to [0,1] and
// multiplied by its weight. All weights zero keeps the plain order
// (priority, then submit time, then id).
type PriorityWeights struct {
	Priority  float64 // weight of Job.Priority/1000
	Age       float64 // weight of the time waited over AgeMax, at most 1
	FairShare float64 // weight of Job.FairShare
	// AgeMax is the wait at which the age factor reaches 1 (Slurm's
	// PriorityMaxAge); zero means DefaultAgeMax.
	AgeMax time.Duration
}

// DefaultAgeMax is the age factor's horizon when PriorityWeights.AgeMax is
// zero: seven days, Slurm's default.
const DefaultAgeMax = 7 * 24 * time.Hour

// maxPriority is the top of Job.Priority's range, which its factor divides by.
const maxPriority = 1000

// zero reports whether no weight is set, so the plain order applies.
func (w PriorityWeights) zero() bool {
	return w.Priority == 0 && w.Age == 0 && w.FairShare == 0
}

// PriorityFactors is how a job's effective priority came about: each
// factor in [0,1] and the weighted total the queue is sorted by.
type PriorityFactors struct {
	Priority  float64 `json:"priority"`   // Job.Priority / 1000
	Age       float64 `json:"age"`        // waited / AgeMax, at most 1
	FairShare float64 `json:"fair_share"` // as the server supplied it, clamped to [0,1]
	// Total is Σ weight·factor; with all weights zero it is Job.Priority,
	// so the order is the plain one.
	Total float64 `json:"total"`
}

// EffectivePriority computes job's priority factors at now under w. It is
// pure: the queue sorter and `hpcsub priority` call the same function, so
// what a user is shown is what the placer used. A submit time in the
// future counts as no wait.
func EffectivePriority(job Job, now time.Time, w PriorityWeights) PriorityFactors {
	f := PriorityFactors{
		Priority:  clamp01(float64(job.Priority) / maxPriority),
		FairShare: clamp01(job.FairShare),
	}
	ageMax := w.AgeMax
	if ageMax <= 0 {
		ageMax = DefaultAgeMax
	}
	if waited := now.Sub(job.Submit); waited > 0 {
		f.Age = clamp01(float64(waited) / float64(ageMax))
	}
	if w.zero() {
		f.Total = float64(job.Priority)
		return f
	}
	f.Total = w.Priority*f.Priority + w.Age*f.Age + w.FairShare*f.FairShare
	return f
}

func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x >= 0:
		return x
	}
	return 0 // negative and NaN
}

// PrioritySorter is the default queue sorter: effective priority (higher
// first), then submit time, then id. It depends only on the jobs, never on
// their order in the slice.
type PrioritySorter struct{ Weights PriorityWeights }

// Name implements QueueSorter.
func (PrioritySorter) Name() string { return "priority" }

// Order implements QueueSorter.
func (s PrioritySorter) Order(jobs []Job, now time.Time) []int32 {
	type key struct {
		prio   float64
		submit int64
		id     uint64
		idx    int32
	}
	keys := make([]key, len(jobs))
	for i := range jobs {
		keys[i] = key{EffectivePriority(jobs[i], now, s.Weights).Total, jobs[i].Submit.UnixNano(), jobs[i].ID, int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		if c := cmp.Compare(a.submit, b.submit); c != 0 {
			return c
		}
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		// Same id twice: keep the input's own fields decisive so a
		// shuffle cannot swap them (identical jobs are interchangeable).
		return cmp.Compare(a.idx, b.idx)
	})
	out := make([]int32, len(keys))
	for i, k := range keys {
		out[i] = k.idx
	}
	return out
}
