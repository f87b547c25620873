package placement

import (
	"cmp"
	"slices"
	"time"
)

// effectivePriority is the job's priority plus AgeWeight points per hour
// it has waited. A submit time in the future counts as no wait.
func effectivePriority(j *Job, now time.Time, p Policy) float64 {
	e := float64(j.Priority)
	if p.AgeWeight != 0 {
		if waited := now.Sub(j.Submit); waited > 0 {
			e += p.AgeWeight * waited.Hours()
		}
	}
	return e
}

// queueOrder returns the indices of pending jobs in the order they are
// considered: effective priority (higher first), then submit time, then
// id. It depends only on the jobs, never on their order in the slice.
func queueOrder(jobs []Job, now time.Time, p Policy) []int32 {
	type key struct {
		prio   float64
		submit int64
		id     uint64
		idx    int32
	}
	keys := make([]key, len(jobs))
	for i := range jobs {
		keys[i] = key{effectivePriority(&jobs[i], now, p), jobs[i].Submit.UnixNano(), jobs[i].ID, int32(i)}
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

// gangSize is the number of nodes a job needs at once.
func gangSize(j *Job) int {
	if j.Nodes < 1 {
		return 1
	}
	return j.Nodes
}
