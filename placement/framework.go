package placement

import "time"

// The placer is a pipeline with extension points, in the spirit of the
// Kubernetes scheduling framework and Nomad's iterator stack:
//
//	QueueSorter  orders the pending jobs (default: PrioritySorter)
//	Filter       says whether a node can take one node's share of a job
//	Scorer       ranks the nodes that can
//	(reservation depth)  how many blocked jobs a pass reserves for
//
// Plan stays a pure function: plugins get values, not the cluster, and
// must themselves be deterministic (no clocks, no I/O, no map order).

// QueueSorter orders the pending queue. Order returns the indices of jobs
// in the order they are considered; it must be a permutation that does not
// depend on the order of the slice.
type QueueSorter interface {
	Name() string
	Order(jobs []Job, now time.Time) []int32
}
