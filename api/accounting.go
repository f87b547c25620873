package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

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
	// GPUs is what NVML measured of each GPU the run held, every node's
	// (gpuusage.go); absent where nothing could measure it.
	GPUUsage []GPUUsage `json:"gpu_usage,omitempty"`

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

// History answers GET /v1/history: ended jobs in end-time order, and the
// cursor of the next page when there is one. Jobs holds whole records;
// with ?brief=1, TSV holds one tab-separated line per job instead (see
// HistoryColumns and ParseHistoryTSV), which costs far less to make and
// to read for long listings.
type History struct {
	Jobs []Job  `json:"jobs,omitempty"`
	TSV  string `json:"tsv,omitempty"`
	// Next is the cursor to pass as ?after= for the next page; empty when
	// this page is the last.
	Next string `json:"next,omitempty"`
}

// HistoryRow is one ended job as a line of `hpcsub history`, read from
// the archive's index alone.
type HistoryRow struct {
	ID             uint64    `json:"id"`
	User           string    `json:"user"`
	Account        string    `json:"account"`
	EndTime        time.Time `json:"end_time"`
	State          JobState  `json:"state"`
	Name           string    `json:"name,omitempty"`
	ExitCode       *int      `json:"exit_code,omitempty"`
	Signal         string    `json:"signal,omitempty"`
	Runs           int       `json:"runs"`
	ElapsedSeconds float64   `json:"elapsed_s"` // over all runs
	CPUSeconds     float64   `json:"cpu_s"`
	PeakMemory     int64     `json:"peak_memory"`
	GPUSeconds     float64   `json:"gpu_s"`
	AllocCPUSecs   float64   `json:"alloc_cpu_s"` // CPUs held times elapsed
}

// HistoryColumns is the first line of History.TSV: the fields of every
// following line, in order. end_unix_ns is the end time in Unix
// nanoseconds; exit is empty when the job has no exit code.
const HistoryColumns = "#id\tuser\taccount\tend_unix_ns\tstate\tname\texit\tsignal\truns\telapsed_s\tcpu_s\tpeak_memory\tgpu_s\talloc_cpu_s"

// ParseHistoryTSV reads History.TSV into rows.
func ParseHistoryTSV(tsv string) ([]HistoryRow, error) {
	header, rest, _ := strings.Cut(tsv, "\n")
	if header != HistoryColumns {
		return nil, fmt.Errorf("history lines have columns %q, want %q", header, HistoryColumns)
	}
	rows := make([]HistoryRow, 0, strings.Count(rest, "\n"))
	for line := range strings.Lines(rest) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 14 {
			return nil, fmt.Errorf("history line %q has %d fields, want 14", line, len(f))
		}
		r := HistoryRow{User: f[1], Account: f[2], State: JobState(f[4]), Name: f[5], Signal: f[7]}
		var errs [10]error
		r.ID, errs[0] = strconv.ParseUint(f[0], 10, 64)
		var end int64
		end, errs[1] = strconv.ParseInt(f[3], 10, 64)
		r.EndTime = time.Unix(0, end)
		if f[6] != "" {
			x, err := strconv.Atoi(f[6])
			r.ExitCode, errs[2] = &x, err
		}
		r.Runs, errs[3] = strconv.Atoi(f[8])
		r.ElapsedSeconds, errs[4] = strconv.ParseFloat(f[9], 64)
		r.CPUSeconds, errs[5] = strconv.ParseFloat(f[10], 64)
		r.PeakMemory, errs[6] = strconv.ParseInt(f[11], 10, 64)
		r.GPUSeconds, errs[7] = strconv.ParseFloat(f[12], 64)
		r.AllocCPUSecs, errs[8] = strconv.ParseFloat(f[13], 64)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("history line %q: %w", line, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
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
	// GPUBilling is what a GPU-second counts in CPU-seconds of fair-share
	// usage (0: CPUs only).
	GPUBilling float64 `json:"gpu_billing,omitempty"`
}

// PriorityReport answers GET /v1/priority: pending jobs in the order the
// placer considers them (highest effective priority first).
type PriorityReport struct {
	Weights  PriorityWeights `json:"weights"`
	Jobs     []JobPriority   `json:"jobs"`
	Accounts []AccountShare  `json:"accounts"`
}
