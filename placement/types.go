// Package placement decides which pending jobs start now and where: a pure,
// deterministic function of a snapshot of the cluster (Plan). It does no
// I/O, reads no clock, starts no goroutines and never depends on map order,
// so the daemon and the trace simulator drive the very same code.
package placement

import (
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// NodeState is the scheduling state of a node as the placer sees it.
type NodeState uint8

const (
	NodeUp       NodeState = iota // accepts new work
	NodeDraining                  // running work continues, nothing new starts
	NodeDown                      // lost; nothing runs or starts here
)

// GPU is one schedulable GPU of a node.
type GPU struct {
	ID     int    // NVML index on the node; what allocations name
	Model  string // NVML product name, e.g. "NVIDIA H100 80GB HBM3"
	Memory int64  // bytes
	NUMA   int    // NUMA node the GPU is attached to; read only when Node.NUMA is set
}

// Node is one machine of the snapshot.
type Node struct {
	Name     string
	State    NodeState
	Features []string // labels a job's features must all be among
	CPUs     int      // schedulable CPUs; ids 0..CPUs-1 unless CPUIDs is set
	CPUIDs   []int    // explicit CPU ids (cpuset) when not 0..CPUs-1
	Memory   int64    // schedulable bytes
	GPUs     []GPU
	// NUMA lists the CPU ids of each NUMA node (NUMA[d]: node d); nil
	// when unknown. With it, a GPU job's CPUs come from its GPUs' NUMA
	// nodes first (numa.go).
	NUMA [][]int
	// Links[i][j] is the interconnect between GPUs[i] and GPUs[j]
	// (positions in GPUs, not IDs). Nil means every pair is LinkSystem.
	Links [][]resources.Link
}

// NodeAlloc is a job's share of one node: concrete CPU ids, memory and GPU ids.
type NodeAlloc struct {
	Node   string
	CPUs   []int
	Memory int64
	GPUs   []int // GPU.ID values
	// GPUShare is the fraction of each of GPUs the job holds when it
	// shares them (a multiple of 0.01 in (0,1)); 0 means whole GPUs.
	GPUShare float64
}

// Running is a job that holds resources now and releases them by End
// (its start plus its walltime).
type Running struct {
	JobID uint64
	End   time.Time
	Nodes []NodeAlloc

	// Preemption (preempt.go): a Preemptible job may be stopped for a
	// pending job of strictly higher Priority; Since is its last
	// checkpoint (or start), from which its lost work is counted;
	// Stopping marks a job already being stopped, whose resources are
	// about to come free.
	Priority    int
	Preemptible bool
	Since       time.Time
	Stopping    bool
}

// GPURequest is what a job asks of the GPUs on each of its nodes.
type GPURequest struct {
	Count     int
	Model     string // substring of GPU.Model, case-insensitive, or alternatives "V100|A100"; "" for any
	MinMemory int64  // bytes per GPU
	NVLink    bool   // every pair of the chosen GPUs must be LinkNVLink
	// Share asks for a fraction of one GPU (0.01 steps, in (0,1)) that
	// other sharing jobs may use too, like Slurm's shards; 0 asks for
	// whole GPUs. A sharing job never lands on a GPU held whole.
	Share float64
}

// Request is a job's need on each of its nodes.
type Request struct {
	CPUs   int
	Memory int64
	GPU    GPURequest
}

// Job is a pending job.
type Job struct {
	ID       uint64
	Priority int       // 0..1000, higher first
	Submit   time.Time // queue order after priority
	Nodes    int       // gang size: all start together; 0 means 1
	PerNode  Request
	Walltime time.Duration
	Features []string
	// FairShare is the account's fair-share factor in [0,1], supplied by
	// the server: Slurm's 2^(-usage/shares), 1 for an unused share. It
	// counts only through PriorityWeights.FairShare.
	FairShare float64
}

// Snapshot is everything Plan looks at. Order of the slices does not
// matter: Plan sorts what it needs.
type Snapshot struct {
	Nodes   []Node
	Running []Running
	Pending []Job
}

// Backfill names a backfilling policy; Backfill.Depth gives its
// reservation depth, which is all Plan looks at.
type Backfill string

const (
	FCFS         Backfill = "fcfs"         // strict queue order, nothing jumps ahead: depth 0
	EASY         Backfill = "easy"         // first blocked job reserved, others may backfill: depth 1
	Conservative Backfill = "conservative" // every blocked job reserved: DepthAll
)

// Policy is the site's placement configuration. The zero Policy is
// strict FCFS with the default ranking.
type Policy struct {
	// Depth is how many blocked jobs of a pass get a reservation, in
	// queue order: 0 (DepthFCFS) none, and the first blocked job blocks
	// everything behind it; 1 (DepthEASY) is EASY backfilling; N is
	// conservative backfilling up to N jobs; DepthAll every blocked job.
	Depth int
	// Weights order the queue by effective priority (EffectivePriority);
	// all zero keeps the plain order: priority, submit time, id.
	Weights PriorityWeights
	// Sorter orders the queue; nil is PrioritySorter{Weights}.
	Sorter QueueSorter
	// Filters run after the built-in resource fit (framework.go).
	Filters []Filter
	// Scorers rank the nodes that fit; nil is DefaultScorers().
	Scorers []Scorer
}

// Reason says why a job did not start, in words users read back.
type Reason string

const (
	ReasonResources         Reason = "Resources"         // not enough free now
	ReasonPriority          Reason = "Priority"          // a higher job is ahead (fcfs)
	ReasonReservation       Reason = "Reservation"       // would delay a reserved job
	ReasonNoNodeWithFeature Reason = "NoNodeWithFeature" // no node has all features
	ReasonGPUTopology       Reason = "GPUTopology"       // GPUs free, but no NVLink set
	ReasonGPUModel          Reason = "GPUModel"          // no node has such GPUs
	ReasonNodes             Reason = "Nodes"             // fewer usable nodes than the gang
	ReasonTooLarge          Reason = "TooLarge"          // larger than any node can ever give
)

// Start is a decision to start a job now on these nodes.
type Start struct {
	JobID uint64
	Nodes []NodeAlloc
}

// Wait is a job left pending, with why and, when it has one, its
// reservation.
type Wait struct {
	JobID         uint64
	Reason        Reason
	Detail        string    // one line for humans
	ReservedStart time.Time // zero when the job holds no reservation
	ReservedNodes []string
}

// Decisions is Plan's answer: starts in the order they were decided,
// waits in queue order.
type Decisions struct {
	Starts  []Start
	Waiting []Wait
	// Preemptions lists the running jobs to stop for pending ones.
	Preemptions []Preemption
}
