package jobs

import "time"

// Spec is a validated job file, normalised (units resolved, defaults applied
// where the file alone decides them).
type Spec struct {
	Name       string
	Account    string        // "" = server decides (user's primary group)
	Priority   int           // 0..1000, default 100
	Walltime   time.Duration // 0 = not given (server may apply a default)
	Nodes      int           // default 1
	Features   []string      // node labels that must all be present; duplicates removed
	Requeue    bool
	Resources  Resources // per node
	Task       Task
	Output     string      // pattern, default "hpc-%j.out"
	Error      string      // pattern; "" (default): stderr goes to the output file
	Checkpoint *Checkpoint // nil if no block
	Array      *Array      // nil if no block
	DependsOn  []Dependency
	// CancelSignal is sent first when the job is cancelled (default
	// SIGTERM); SIGKILL follows after the cluster's grace time.
	CancelSignal string

	// Preemptible: a pending job of higher priority may take this job's
	// resources; it is warned, checkpointed and requeued, never just killed.
	Preemptible bool
}

// Resources is what the job needs on each of its nodes.
type Resources struct {
	CPUs   int   // default 1
	Memory int64 // bytes, default 1GiB
	GPU    GPU
}

// GPU is the per-node GPU request. Count 0 means no GPUs.
type GPU struct {
	Count  int
	Model  string // "" = any model; matched against the NVML product name
	Memory int64  // minimum bytes per GPU, 0 = any
	Link   string // "any" (default) or "nvlink"
	// Share is a fraction of one GPU (0.01..0.99, steps of 0.01) that
	// other sharing jobs may use too; 0 asks for whole GPUs.
	Share float64
}

// Task is what runs. Exactly one of Command and Script is set; Args go with
// Command only. A Script runs with the interpreter of its "#!" line, else
// /bin/sh. ScriptFile names the file Script was read from, if any.
type Task struct {
	Command    string
	Args       []string
	Script     string
	ScriptFile string
	Env        map[string]string // never nil
	Workdir    string            // "" = submit dir
}

// Checkpoint is the job's checkpoint policy.
type Checkpoint struct {
	Mode        string        // "signal" (default) or "criu"
	Signal      string        // e.g. "SIGUSR1"; default SIGUSR1 in signal mode, "" in criu mode unless given
	Warn        time.Duration // how long before walltime/preemption/drain to signal; default 5m (at most half the walltime)
	Interval    time.Duration // periodic checkpoints, 0 = none
	MaxRestarts int           // default 3
	RetryOnExit []int         // exit codes that restart the job like exit 85
	OnFailure   string        // criu mode: "requeue" (default) or "kill" when a dump fails
}

// Array makes the job an array of Count tasks, indices 0..Count-1 (or
// Indices, ascending, when given), at most MaxRunning (default Count) at
// once.
type Array struct {
	Count, MaxRunning int
	Indices           []int // nil: 0..Count-1
}

// Index is the array index of the array's i-th task.
func (a *Array) Index(i int) int {
	if a.Indices != nil {
		return a.Indices[i]
	}
	return i
}

// Defaults applied by Parse.
const (
	DefaultPriority    = 100
	DefaultNodes       = 1
	DefaultCPUs        = 1
	DefaultMemory      = int64(1 << 30)
	DefaultOutput      = "hpc-%j.out"
	DefaultError       = "" // stderr joins stdout unless error is set, as sbatch does
	DefaultGPULink     = "any"
	DefaultCkptMode    = "signal"
	DefaultCkptSignal  = "SIGUSR1"
	DefaultCkptWarn    = 5 * time.Minute
	DefaultMaxRestarts = 3
)
