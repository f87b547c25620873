package placement

import "time"

// queueOrder returns the indices of pending jobs in the order they are
// considered, by the policy's sorter.
func queueOrder(jobs []Job, now time.Time, p Policy) []int32 {
	if p.Sorter != nil {
		return p.Sorter.Order(jobs, now)
	}
	return PrioritySorter{Weights: p.Weights}.Order(jobs, now)
}

// gangSize is the number of nodes a job needs at once.
func gangSize(j *Job) int {
	if j.Nodes < 1 {
		return 1
	}
	return j.Nodes
}
