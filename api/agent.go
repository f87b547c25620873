package api

import (
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// Assignment is a job's part on one node, as the server hands it to that
// node's agent: everything the agent needs to run it, nothing to look up.
type Assignment struct {
	JobID         uint64        `json:"job_id"`
	Name          string        `json:"name"`
	User          string        `json:"user"`
	UID           uint32        `json:"uid"`
	GID           uint32        `json:"gid"`
	Groups        []uint32      `json:"groups,omitempty"`
	Argv          []string      `json:"argv,omitempty"`
	Script        string        `json:"script,omitempty"`
	Env           []string      `json:"env"`
	Workdir       string        `json:"workdir"`
	Stdout        string        `json:"stdout"`
	Stderr        string        `json:"stderr"`
	CPUs          []int         `json:"cpus"`
	Memory        int64         `json:"memory"`
	GPUs          []int         `json:"gpus,omitempty"`
	GPUShare      float64       `json:"gpu_share,omitempty"` // fraction of each of GPUs, 0: whole GPUs
	NodeList      []string      `json:"node_list"`
	ArrayIndex    int           `json:"array_index"` // -1 when not an array task
	RestartCount  int           `json:"restart_count"`
	CheckpointDir string        `json:"checkpoint_dir,omitempty"`
	Walltime      time.Duration `json:"walltime"`
	WarnSignal    string        `json:"warn_signal,omitempty"`
	WarnBefore    time.Duration `json:"warn_before,omitempty"`
	Umask         uint32        `json:"umask"`
	// Requeue: the server requeues the job when its node goes DOWN, so an
	// agent cut off from the server stops it (self-fencing).
	Requeue bool `json:"requeue,omitempty"`
	// FenceAfter, when set, leases the job to its agent: the job's shim
	// kills it once the agent has not renewed the lease (after a successful
	// exchange with the server) for this long, so a job the server requeues
	// when a dead agent's node goes DOWN never runs twice. 0: no lease.
	FenceAfter time.Duration `json:"fence_after,omitempty"`
	// Attempt names this run of the job; its outcome carries it back so an
	// outcome of an earlier run is never taken for the current one's.
	Attempt uint64 `json:"attempt,omitempty"`
	// CheckpointMode is the job's: "criu" jobs are restored from their
	// last image when there is one.
	CheckpointMode string `json:"checkpoint_mode,omitempty"`
}

// Outcome is how a job's part on one node ended, as its agent reports it.
type Outcome struct {
	JobID    uint64    `json:"job_id"`
	Node     string    `json:"node"`
	State    JobState  `json:"state"` // COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL
	ExitCode int       `json:"exit_code"`
	Signal   string    `json:"signal,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Usage    Usage     `json:"usage"`
	// GPUs is what the node measured of the run's GPUs through NVML;
	// absent without NVML.
	GPUUsage []GPUUsage `json:"gpu_usage,omitempty"`
	// NeverStarted: the job's launch was cut short before any of its code
	// ran, so it goes back to the queue instead of failing.
	NeverStarted bool `json:"never_started,omitempty"`
	// HostFailure: the node failed the job (it could not be started or
	// watched there, or its supervisor died), not the job itself; ExitCode
	// is then not the job's. The server requeues the job without using a
	// restart, or ends it NODE_FAIL, and counts the failure against the
	// node (server/hostfail.go).
	HostFailure bool `json:"host_failure,omitempty"`
	// CheckpointError is the last checkpoint of the run that failed (a
	// CRIU dump), when no later one succeeded.
	CheckpointError string `json:"checkpoint_error,omitempty"`
	// Attempt is the Assignment's (0: unknown, e.g. adopted after an
	// agent restart).
	Attempt uint64 `json:"attempt,omitempty"`
}

// NodeRegistration is what an agent tells the server about its node when
// it (re)connects.
type NodeRegistration struct {
	Name      string             `json:"name"`
	CPUIDs    []int              `json:"cpu_ids"` // schedulable CPUs
	Memory    int64              `json:"memory"`  // schedulable bytes
	GPUs      []GPU              `json:"gpus"`
	Links     [][]resources.Link `json:"links,omitempty"`
	Features  []string           `json:"features,omitempty"`
	Isolation string             `json:"isolation"`
	// NUMA lists the node's NUMA nodes with their CPUs (empty when unknown).
	NUMA []NUMANode `json:"numa,omitempty"`
	// Virtual marks a node of `hpcd agent --virtual` (a test and scale tool).
	Virtual bool `json:"virtual,omitempty"`
	// CRIU is the version of the CRIU the agent found and checked at
	// start ("" when none works): the node then takes criu jobs.
	CRIU string `json:"criu,omitempty"`
}

// NUMANode is one NUMA node of a machine and its CPUs.
type NUMANode struct {
	ID   int   `json:"id"`
	CPUs []int `json:"cpus"`
}
