package api

import "time"

// Run is the accounting record of one run of a job: every start that
// ended (completed, failed, was requeued or lost its node) gets one, so a
// job restarted twice has three. Usage sums over runs; `hpcsub show` and
// `hpcsub eff` list them.
type Run struct {
	// Index is the run's number: 0 for the first start, n after n restarts.
	Index int              `json:"index"`
	Nodes []string         `json:"nodes"`
	GPUs  map[string][]int `json:"gpus,omitempty"` // node -> GPU ids
	CPUs  int              `json:"cpus"`           // allocated CPUs over all nodes
	// Memory is the allocated memory over all nodes, bytes.
	Memory   int64     `json:"memory"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	State    JobState  `json:"state"`           // how the run ended: COMPLETED, FAILED, REQUEUED, NODE_FAIL, ...
	Cause    string    `json:"cause,omitempty"` // why it ended, in words
	ExitCode *int      `json:"exit_code,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Usage    Usage     `json:"usage"`

	// Checkpoint-restart: Stop is why the system stopped the run
	// ("walltime", "preemption", "drain", "requeue", "node-fail"; empty
	// when it ended on its own); Checkpoints counts the checkpoints asked
	// of it, the last at LastCheckpoint; CheckpointError is the last
	// checkpoint that failed (a CRIU dump), in words.
	Stop            string     `json:"stop,omitempty"`
	Checkpoints     int        `json:"checkpoints,omitempty"`
	LastCheckpoint  *time.Time `json:"last_checkpoint,omitempty"`
	CheckpointError string     `json:"checkpoint_error,omitempty"`
}

// TotalUsage sums the usage of runs: elapsed, CPU and GPU time add up,
// peak memory is the largest of any run.
func TotalUsage(runs []Run) Usage {
	var u Usage
	for _, r := range runs {
		u.ElapsedSeconds += r.Usage.ElapsedSeconds
		u.CPUSeconds += r.Usage.CPUSeconds
		u.GPUSeconds += r.Usage.GPUSeconds
		u.PeakMemory = max(u.PeakMemory, r.Usage.PeakMemory)
	}
	return u
}

// History answers GET /v1/history: ended jobs, newest end first, and the
// cursor of the next page when there is one.
type History struct {
	Jobs []Job `json:"jobs"`
	// Next is the cursor to pass as ?after= for the next page; empty when
	// this page is the last.
	Next string `json:"next,omitempty"`
}

// UsageRow is one line of GET /v1/usage: what a user or an account
// consumed over the period asked.
type UsageRow struct {
	Key      string  `json:"key"` // the account or user name
	Jobs     int     `json:"jobs"`
	Runs     int     `json:"runs"`
	CPUHours float64 `json:"cpu_hours"` // CPU time used
	// AllocCPUHours is CPUs allocated times elapsed: what the jobs held.
	AllocCPUHours float64 `json:"alloc_cpu_hours"`
	GPUHours      float64 `json:"gpu_hours"`
}

// UsageReport answers GET /v1/usage.
type UsageReport struct {
	By    string     `json:"by"` // account or user
	Since time.Time  `json:"since"`
	Until time.Time  `json:"until"`
	Rows  []UsageRow `json:"rows"`
}

// PriorityFactors is how a pending job's effective priority comes about
// (as sprio shows it): each factor in [0,1], and the weighted total the
// queue is ordered by.
type PriorityFactors struct {
	Priority  float64 `json:"priority"`
	Age       float64 `json:"age"`
	FairShare float64 `json:"fair_share"`
	Total     float64 `json:"total"`
}

// JobPriority is one pending job's line of GET /v1/priority.
type JobPriority struct {
	ID       uint64          `json:"id"`
	User     string          `json:"user"`
	Account  string          `json:"account"`
	Priority int             `json:"priority"` // as submitted, 0..1000
	Factors  PriorityFactors `json:"factors"`
}

// AccountShare is an account's fair-share standing (as sshare shows it).
type AccountShare struct {
	Account string `json:"account"`
	// Shares is the account's configured shares; NormShares its
	// fraction of all shares.
	Shares     float64 `json:"shares"`
	NormShares float64 `json:"norm_shares"`
	// Usage is allocated CPU-seconds decayed with the half-life, running
	// jobs included; NormUsage its fraction of all accounts' usage.
	Usage     float64 `json:"usage"`
	NormUsage float64 `json:"norm_usage"`
	FairShare float64 `json:"fair_share"` // 2^(-NormUsage/NormShares)
}

// PriorityWeights are the server's multifactor weights.
type PriorityWeights struct {
	Priority  float64 `json:"priority"`
	Age       float64 `json:"age"`
	FairShare float64 `json:"fair_share"`
	AgeMax    string  `json:"age_max"`
	HalfLife  string  `json:"half_life"` // of fair-share usage
}

// PriorityReport answers GET /v1/priority: pending jobs in the order the
// placer considers them (highest effective priority first).
type PriorityReport struct {
	Weights  PriorityWeights `json:"weights"`
	Jobs     []JobPriority   `json:"jobs"`
	Accounts []AccountShare  `json:"accounts"`
}
