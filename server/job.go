package server

import (
	"sort"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

// job is the server's durable record of one job (one array task is one
// job). It is stored as JSON; fields tagged "-" are derived each
// scheduling pass and never persisted.
type job struct {
	// jobSpec is what the job asked for: shared by the tasks of an array
	// and by jobs submitted alike (jobspec.go), never changed in place.
	*jobSpec

	ID         uint64 `json:"id"`
	ArrayJobID uint64 `json:"array_job_id,omitempty"`
	ArrayIndex int    `json:"array_index"` // -1 when not an array task
	// CheckpointDir is where a job with a checkpoint block saves its state;
	// the same path on every restart.
	CheckpointDir string `json:"checkpoint_dir,omitempty"`

	State    api.JobState          `json:"state"`
	Reason   string                `json:"reason,omitempty"`
	ExitCode *int                  `json:"exit_code,omitempty"`
	Signal   string                `json:"signal,omitempty"`
	Submit   time.Time             `json:"submit"`
	Start    *time.Time            `json:"start,omitempty"`
	End      *time.Time            `json:"end,omitempty"`
	Alloc    []placement.NodeAlloc `json:"alloc,omitempty"`
	Restarts int                   `json:"restarts,omitempty"`
	// Attempt names the current run (set at each start) so an outcome of
	// an earlier run is never taken for this one's.
	Attempt         uint64 `json:"attempt,omitempty"`
	CancelRequested bool   `json:"cancel_requested,omitempty"`
	// RequeueRequested marks a job the system stops (drain with requeue):
	// whatever its exit, it goes back to the queue while restarts remain.
	RequeueRequested bool       `json:"requeue_requested,omitempty"`
	Usage            *api.Usage `json:"usage,omitempty"`
	// Parts holds the outcomes of a multi-node job's parts reported so far.
	Parts   map[string]api.Outcome `json:"parts,omitempty"`
	History []api.Transition       `json:"history"`
	// Runs is the accounting record of every run that ended (accounting.go).
	Runs []api.Run `json:"runs,omitempty"`

	// Checkpoint-restart (package checkpoint has the rule). StopCause is
	// why the system is stopping the current run (walltime warning, drain,
	// preemption): whatever its exit, the run is then requeued while
	// restarts remain. StopDeadline ends a warned job's grace. The
	// checkpoints of the current run are counted until it ends (then they
	// go into its api.Run). What the job's checkpoint block asked for is
	// in its jobSpec.
	StopCause       string     `json:"stop_cause,omitempty"`
	StopDeadline    *time.Time `json:"stop_deadline,omitempty"`
	Checkpoints     int        `json:"checkpoints,omitempty"`
	LastCheckpoint  *time.Time `json:"last_checkpoint,omitempty"`
	CheckpointError string     `json:"checkpoint_error,omitempty"`

	waitReason    string    `json:"-"`
	reservedStart time.Time `json:"-"`
	// archived, on a stand-in for a job that left the live set, is the
	// archive's record of it (see archivedStub).
	archived *api.Job `json:"-"`
}

// to records a state change with its time and reason. Terminal states
// never change: callers check before, this guards the rule once more.
func (j *job) to(state api.JobState, reason string, now time.Time) {
	if api.Terminal(j.State) {
		return
	}
	j.State = state
	j.Reason = reason
	j.History = append(j.History, api.Transition{Time: now, State: state, Reason: reason})
	if api.Terminal(state) {
		t := now
		j.End = &t
	}
}

// nodeNames lists the nodes of the job's allocation in allocation order.
func (j *job) nodeNames() []string {
	names := make([]string, 0, len(j.Alloc))
	for _, a := range j.Alloc {
		names = append(names, a.Node)
	}
	return names
}

// placementJob converts the record into the placer's view of a pending job.
func (j *job) placementJob() placement.Job {
	return placement.Job{
		ID:       j.ID,
		Priority: j.Priority,
		Submit:   j.Submit,
		Nodes:    j.Nodes,
		PerNode: placement.Request{
			CPUs:   j.CPUs,
			Memory: j.Memory,
			GPU: placement.GPURequest{
				Count:     j.GPUCount,
				Model:     j.GPUModel,
				MinMemory: j.GPUMemory,
				NVLink:    j.GPUNVLink,
				Share:     j.GPUShare,
			},
		},
		Walltime: j.Walltime,
		Features: j.placementFeatures(),
	}
}

// apiJob converts the record to what the API shows.
func (j *job) apiJob() api.Job {
	if j.archived != nil {
		return *j.archived
	}
	out := api.Job{
		ID:          j.ID,
		Name:        j.Name,
		User:        j.User,
		UID:         int(j.UID),
		Account:     j.Account,
		Priority:    j.Priority,
		State:       j.State,
		Reason:      j.Reason,
		ExitCode:    j.ExitCode,
		Signal:      j.Signal,
		ArrayJobID:  j.ArrayJobID,
		NodesWanted: j.Nodes,
		CPUs:        j.CPUs,
		Memory:      j.Memory,
		GPUsPerNode: j.GPUCount,
		Features:    j.Features,
		Walltime:    j.Walltime.String(),
		WalltimeSec: int64(j.Walltime / time.Second),
		Nodes:       j.nodeNames(),
		GPUs:        map[string][]int{},
		Workdir:     j.Workdir,
		Output:      j.outputPath(),
		Error:       j.errorPath(),
		SubmitTime:  j.Submit,
		StartTime:   j.Start,
		EndTime:     j.End,
		Restarts:    j.Restarts,
		Usage:       j.Usage,
		History:     j.History,
		Runs:        j.Runs,
	}
	out.ArrayIndex = j.arrayIndex()
	for _, d := range j.Deps {
		out.DependsOn = append(out.DependsOn, d.Label)
	}
	if len(j.Alloc) > 0 {
		out.CPUIDs = map[string][]int{}
	}
	for _, a := range j.Alloc {
		out.GPUs[a.Node] = a.GPUs
		out.CPUIDs[a.Node] = a.CPUs
	}
	out.Reason, out.ReservedStart = j.waitView()
	return out
}

// assignment is the job's part on node a, as that node's agent receives it.
func (j *job) assignment(a placement.NodeAlloc) api.Assignment {
	env := make([]string, 0, len(j.Env))
	keys := make([]string, 0, len(j.Env))
	for k := range j.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+j.Env[k])
	}
	env = append(env, j.slurmEnv(a)...)
	return api.Assignment{
		JobID:         j.ID,
		Name:          j.Name,
		User:          j.User,
		UID:           j.UID,
		GID:           j.GID,
		Groups:        j.Groups,
		Argv:          j.Argv,
		Script:        j.Script,
		Env:           env,
		Workdir:       j.Workdir,
		Stdout:        j.outputPath(),
		Stderr:        j.errorPath(),
		CPUs:          a.CPUs,
		Memory:        a.Memory,
		GPUs:          a.GPUs,
		GPUShare:      a.GPUShare,
		NodeList:      j.nodeNames(),
		ArrayIndex:    j.ArrayIndex,
		RestartCount:  j.Restarts,
		Walltime:      j.Walltime,
		Umask:         j.Umask,
		CheckpointDir: j.CheckpointDir,
		Requeue:       j.Requeue,
		Attempt:       j.Attempt,

		CheckpointMode: j.CheckpointMode,
	}
}
