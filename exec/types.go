package exec

import (
	"errors"
	"syscall"
	"time"

	"github.com/hpc-sched/hpc/checkpoint"
)

// Isolation names the mechanism that confines a job.
type Isolation string

// The isolation modes. IsolationNone is the fallback: rlimits per process and
// a kill of the process tree, without reliable OOM detection.
const (
	IsolationV1   Isolation = "cgroup-v1"
	IsolationV2   Isolation = "cgroup-v2"
	IsolationNone Isolation = "none"
)

// Outcome states, written exactly as the job state machine names them.
const (
	StateCompleted   = "COMPLETED"
	StateFailed      = "FAILED"
	StateTimeout     = "TIMEOUT"
	StateOutOfMemory = "OUT_OF_MEMORY"
	StateCancelled   = "CANCELLED"
)

// Errors callers may test with errors.Is.
var (
	// ErrUnknownJob: no state directory exists for the job.
	ErrUnknownJob = errors.New("unknown job")
	// ErrJobExists: Launch was called for a job id that already has state.
	ErrJobExists = errors.New("job already has state on this node")
	// ErrRootRefused: the job would run as uid 0 and Config.AllowRoot is false.
	ErrRootRefused = errors.New("jobs may not run as root on this node")
	// ErrInvalidSpec wraps every validation failure of a Spec.
	ErrInvalidSpec = errors.New("invalid job spec")
	// ErrFinished: the job's processes are gone (Signal after the end).
	ErrFinished = errors.New("job has finished")
)

// Config configures an Executor.
type Config struct {
	StateDir     string        // one subdir per job: <StateDir>/<jobID>/
	CgroupParent string        // default "hpc": /sys/fs/cgroup/<ctrl>/hpc/job-<id> on v1
	AllowRoot    bool          // run uid 0 jobs (dev mode allows; otherwise refused)
	Isolation    Isolation     // "" = detect; force "none" for the fallback
	KillGrace    time.Duration // walltime: signal, wait grace, then kill all; default 10s
	ShimPath     string        // binary re-exec'd as the shim; default /proc/self/exe

	// CRIU is the checked criu binary of the node (checkpoint.FindCRIU);
	// nil when the node has none: jobs cannot then be restored here.
	CRIU *checkpoint.CRIU

	// Spawner launches jobs through one long-lived spawner process per node
	// (spawner.go) instead of a shim process per job, for the common case:
	// cgroup v1 isolation and a job without checkpoints (a CRIU image holds
	// the paths and cgroups of the shim's layout, and a restore needs the
	// shim). The other jobs keep the shim.
	Spawner bool

	// PidsShare is the share of kernel.pid_max a job may use when its
	// Spec sets no Pids; 0 = DefaultPidsShare.
	PidsShare float64
}

// GPUDevice is one GPU allocated to a job.
type GPUDevice struct {
	Index  int   // NVML index -> CUDA_VISIBLE_DEVICES
	Minor  int   // -> /dev/nvidiaN, c 195:N
	Memory int64 // bytes, 0 when unknown; a sharing job's memory cap is its share of it
}

// Spec is everything the executor needs to run one job on this node.
type Spec struct {
	JobID  uint64
	Name   string
	User   string
	Argv   []string // command and args, argv[0] resolved with the job's PATH; or:
	Script string   // written to the state dir and run with /bin/sh <file>
	Env    []string // base environment KEY=VAL; JobEnv adds HPC_* and CUDA vars
	Dir    string   // working directory

	UID, GID uint32
	Groups   []uint32

	Stdout, Stderr string // absolute paths, opened (O_APPEND) as the job's user

	CPUSet       []int // concrete CPU ids; CPU quota = len(CPUSet) CPUs
	Memory       int64 // bytes; swap limited to the same value so no swap is used
	Pids         int64 // 0 = the executor's share of pid_max (Config.PidsShare; pids.max counts threads)
	GPUs         []GPUDevice
	GPUShare     float64 // fraction of each GPU the job shares with others; 0: whole GPUs
	AllGPUMinors []int   // every GPU minor on the node: those not allocated are denied

	NodeList      []string
	ArrayIndex    int // -1 = not an array
	RestartCount  int
	CheckpointDir string
	// RestoreFrom, when set, is a CRIU image directory: the job is restored
	// from it (its processes, memory and files continue) instead of started.
	RestoreFrom string `json:",omitempty"`

	Umask    uint32        // file mode mask of the job's processes (output files too)
	Walltime time.Duration // 0 = none
	// FenceAfter, when set, makes the shim kill the job once its lease
	// (RenewLease) is older than this: the agent is gone and the server may
	// run the job elsewhere. 0: no lease (see lease.go).
	FenceAfter time.Duration `json:",omitempty"`
	WarnSignal syscall.Signal
	WarnBefore time.Duration
}

// Usage is what a job consumed.
type Usage struct {
	Elapsed, CPUTime time.Duration
	PeakMemory       int64
}

// Outcome is how a job ended.
type Outcome struct {
	State    string // COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED
	ExitCode int    // exit status; 128+signo when killed by a signal
	Signal   string // "SIGKILL" etc. when killed by a signal, else ""
	Reason   string // one line for users
	Start    time.Time
	End      time.Time
	Usage    Usage
	// NeverStarted is set when not one instruction of the job ran (its
	// launch was cut short, e.g. the agent died before releasing the shim):
	// the job may safely run elsewhere or again.
	NeverStarted bool `json:",omitempty"`
	// HostFailure is set when the node, not the job, ended it: the job's
	// supervisor died, or the node could not start it. Its exit code is
	// then not the job's.
	HostFailure bool `json:",omitempty"`
	// Fenced is set when the shim killed the job because its agent's lease
	// ran out (a host failure too).
	Fenced bool `json:",omitempty"`
}
