// Package api holds the JSON shapes of the /v1 HTTP API that hpcd serves
// and hpcsub speaks, and a small client for it. Server and CLI convert
// their own types to these at their edge.
package api

import "time"

// JobState is a job's state, written exactly as users see it.
type JobState string

// Job states.
const (
	StatePending       JobState = "PENDING"
	StateHeld          JobState = "HELD"
	StateRunning       JobState = "RUNNING"
	StateCompleted     JobState = "COMPLETED"
	StateFailed        JobState = "FAILED"
	StateTimeout       JobState = "TIMEOUT"
	StateOutOfMemory   JobState = "OUT_OF_MEMORY"
	StateCancelled     JobState = "CANCELLED"
	StateNodeFail      JobState = "NODE_FAIL"
	StateCheckpointing JobState = "CHECKPOINTING"
	StateRequeued      JobState = "REQUEUED"
)

// NodeState is a node's state as the API shows it.
type NodeState string

// Node states: an attached node is IDLE, MIXED or ALLOCATED by what runs
// on it, DRAINING/DRAINED once an admin (or the server) drained it, and
// DOWN while no agent is attached.
const (
	NodeIdle      NodeState = "IDLE"
	NodeMixed     NodeState = "MIXED"
	NodeAllocated NodeState = "ALLOCATED"
	NodeDraining  NodeState = "DRAINING"
	NodeDrained   NodeState = "DRAINED"
	NodeDown      NodeState = "DOWN"
)

// Terminal reports whether a job in state s never changes again.
func Terminal(s JobState) bool {
	switch s {
	case StateCompleted, StateFailed, StateTimeout, StateOutOfMemory, StateCancelled, StateNodeFail:
		return true
	}
	return false
}

// SubmitRequest carries the job file itself: the server parses and
// validates it with the same code as `hpcsub validate`, so nothing the
// client did can bypass validation.
type SubmitRequest struct {
	Filename string            `json:"filename"`
	Source   string            `json:"source"`
	Vars     map[string]string `json:"vars,omitempty"`
	Env      map[string]string `json:"env,omitempty"` // submitter's environment
	Cwd      string            `json:"cwd"`           // absolute; the default workdir
	// Umask is the submitter's file mode mask (as Slurm propagates it), so
	// output files are as private as the user's own; nil means 022.
	Umask *uint32 `json:"umask,omitempty"`
	// Files holds the task's script_file, read by the client (name as the
	// job file writes it -> contents): the server never reads user paths.
	Files map[string]string `json:"files,omitempty"`
	// Dependencies are Slurm-style ("afterok:42", "afterany:prep"), added
	// to the file's depends_on.
	Dependencies []string         `json:"dependencies,omitempty"`
	Overrides    *SubmitOverrides `json:"overrides,omitempty"`
	// DryRun asks where and when the job would start; nothing is created.
	DryRun bool `json:"dry_run,omitempty"`
}

// SubmitResponse names the jobs created (several for an array).
type SubmitResponse struct {
	IDs    []uint64 `json:"ids"`
	DryRun *DryRun  `json:"dry_run,omitempty"`
}

// Transition is one stored change of a job's state.
type Transition struct {
	Time   time.Time `json:"time"`
	State  JobState  `json:"state"`
	Reason string    `json:"reason,omitempty"`
}

// Usage is what a finished (or running) job consumed.
type Usage struct {
	ElapsedSeconds float64 `json:"elapsed_s"`
	CPUSeconds     float64 `json:"cpu_s"`
	PeakMemory     int64   `json:"peak_memory"`
	GPUSeconds     float64 `json:"gpu_s"`
}

// Job is a job as the API shows it.
type Job struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	User       string   `json:"user"`
	UID        int      `json:"uid"`
	Account    string   `json:"account"`
	Priority   int      `json:"priority"`
	State      JobState `json:"state"`
	Reason     string   `json:"reason,omitempty"` // why pending, or why it ended
	ExitCode   *int     `json:"exit_code"`        // null until it ends with a code
	Signal     string   `json:"signal,omitempty"` // e.g. "SIGKILL" when killed by a signal
	ArrayJobID uint64   `json:"array_job_id,omitempty"`
	ArrayIndex *int     `json:"array_index,omitempty"`
	// DependsOn lists what the job waits for ("afterok:42").
	DependsOn []string `json:"depends_on,omitempty"`
	// Private: the job is another user's, so its paths are not shown.
	Private bool `json:"private,omitempty"`

	NodesWanted int      `json:"nodes_wanted"`
	CPUs        int      `json:"cpus"`   // per node
	Memory      int64    `json:"memory"` // per node, bytes
	GPUsPerNode int      `json:"gpus_per_node"`
	Features    []string `json:"features,omitempty"`
	Walltime    string   `json:"walltime"`
	WalltimeSec int64    `json:"walltime_s"`

	Nodes  []string         `json:"nodes"` // allocated node names
	GPUs   map[string][]int `json:"gpus"`  // node -> GPU ids
	CPUIDs map[string][]int `json:"cpu_ids,omitempty"`

	Workdir string `json:"workdir"`
	Output  string `json:"output"`
	Error   string `json:"error"`

	SubmitTime    time.Time  `json:"submit_time"`
	StartTime     *time.Time `json:"start_time,omitempty"`
	EndTime       *time.Time `json:"end_time,omitempty"`
	ReservedStart *time.Time `json:"reserved_start,omitempty"`
	Restarts      int        `json:"restarts"`

	Usage   *Usage       `json:"usage,omitempty"`
	History []Transition `json:"history,omitempty"`
	// Runs holds one accounting record per run that ended, oldest first.
	Runs []Run `json:"runs,omitempty"`
}

// GPU is one GPU of a node as the API shows it.
type GPU struct {
	Index    int    `json:"index"`
	UUID     string `json:"uuid"`
	Model    string `json:"model"`
	Memory   int64  `json:"memory"`
	Used     bool   `json:"used"`
	NUMANode int    `json:"numa_node"`
	PCIBusID string `json:"pci_bus_id,omitempty"` // e.g. "0000:3b:00.0"
	// OutOfService says why the placer gives this GPU out no more: an
	// admin's drain or the agent's health check (empty when in service).
	OutOfService string `json:"out_of_service,omitempty"`
}

// Node is a node as the API shows it.
type Node struct {
	Name        string    `json:"name"`
	State       NodeState `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	CPUs        int       `json:"cpus"`
	CPUsUsed    int       `json:"cpus_used"`
	Memory      int64     `json:"memory"`
	MemoryUsed  int64     `json:"memory_used"`
	GPUs        []GPU     `json:"gpus"`
	Features    []string  `json:"features,omitempty"`
	Isolation   string    `json:"isolation"` // cgroup-v1, cgroup-v2 or none (rlimits)
	Jobs        []uint64  `json:"jobs,omitempty"`
	LastContact time.Time `json:"last_contact"`
	// NUMA lists the node's NUMA nodes and their CPUs, as its agent reported.
	NUMA []NUMANode `json:"numa,omitempty"`
	// AgentVersion is the hpcd version of the node's agent.
	AgentVersion string `json:"agent_version,omitempty"`

	// Checkpoint lists the checkpoint modes the node takes: "signal"
	// everywhere, "criu" where a CRIU >= 4.1 was found at agent start.
	Checkpoint []string `json:"checkpoint,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"` // one line: what went wrong and what to do
	// Diagnostics holds one "file:line:col: message" line per HCL problem.
	Diagnostics []string `json:"diagnostics,omitempty"`
}
