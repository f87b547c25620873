package server

import (
	"encoding/json"
	"sync"
	"time"
)

// jobSpec is the part of a job record that says what the job asked for:
// who, what, where and how much. Every task of an array shares one (an
// array of 100,000 tasks was 100,000 copies of ~700 bytes), and so do jobs
// submitted alike or loaded from the store alike (specCache). It is never
// changed in place: a change (ActionUpdate) gives the job its own copy
// first (ownSpec), so the other jobs that share it keep theirs. It is
// embedded in job, so its fields read as the job's and are stored in the
// job's JSON record as before.
type jobSpec struct {
	Name     string   `json:"name"`
	User     string   `json:"user"`
	UID      uint32   `json:"uid"`
	GID      uint32   `json:"gid"`
	Groups   []uint32 `json:"groups,omitempty"`
	Account  string   `json:"account"`
	Priority int      `json:"priority"`

	Nodes     int           `json:"nodes"`
	CPUs      int           `json:"cpus"`
	Memory    int64         `json:"memory"`
	GPUCount  int           `json:"gpu_count,omitempty"`
	GPUModel  string        `json:"gpu_model,omitempty"`
	GPUMemory int64         `json:"gpu_memory,omitempty"`
	GPUNVLink bool          `json:"gpu_nvlink,omitempty"`
	GPUShare  float64       `json:"gpu_share,omitempty"` // fraction of one GPU, 0: whole GPUs
	Features  []string      `json:"features,omitempty"`
	Walltime  time.Duration `json:"walltime"`
	Requeue   bool          `json:"requeue,omitempty"`

	Argv   []string `json:"argv,omitempty"`
	Script string   `json:"script,omitempty"`
	// Env is shared with other jobs of the same environment (envCache) and
	// stored once, as a blob named by EnvKey.
	Env     map[string]string `json:"-"`
	EnvKey  string            `json:"env_key,omitempty"`
	Workdir string            `json:"workdir"`
	// OutputPattern and ErrorPattern are the job file's output and error
	// patterns, expanded per task when asked (job.outputPath) rather than
	// kept as one more string per task; an empty ErrorPattern joins
	// stderr to stdout, as sbatch does.
	OutputPattern string `json:"output_pattern,omitempty"`
	ErrorPattern  string `json:"error_pattern,omitempty"`
	// Output and Error are the expanded paths, as records stored before
	// the spec kept the patterns have them (such a job's spec is its own);
	// empty in newer ones (outputPath).
	Output string `json:"output"`
	Error  string `json:"error"`

	ArrayMaxRunning int `json:"array_max_running,omitempty"`
	ArrayTaskCount  int `json:"array_task_count,omitempty"`
	// Deps are the jobs this one waits for (deps.go).
	Deps      []jobDep `json:"deps,omitempty"`
	SubmitDir string   `json:"submit_dir,omitempty"`
	// CancelSignal is what a cancel sends before SIGKILL ("" = SIGTERM).
	CancelSignal string        `json:"cancel_signal,omitempty"`
	MaxRestarts  int           `json:"max_restarts,omitempty"`
	WarnSignal   string        `json:"warn_signal,omitempty"`
	WarnBefore   time.Duration `json:"warn_before,omitempty"`
	Umask        uint32        `json:"umask"`

	// The job's checkpoint block (package checkpoint has the rule).
	CheckpointMode     string        `json:"checkpoint_mode,omitempty"`
	CheckpointInterval time.Duration `json:"checkpoint_interval,omitempty"`
	RetryOnExit        []int         `json:"retry_on_exit,omitempty"`
	OnFailure          string        `json:"on_failure,omitempty"`
	Preemptible        bool          `json:"preemptible,omitempty"`
}

// ownSpec gives j a spec of its own before one of its fields changes: the
// one it has may be shared with other jobs (and with the record a
// copy-on-write change started from).
func (j *job) ownSpec() {
	c := *j.jobSpec
	j.jobSpec = &c
}

// specCache shares one jobSpec among jobs that asked for the same thing,
// keyed by the spec's stored JSON (which names the environment by its
// hash, so equal keys are equal specs). Like envCache it is bounded and
// starts afresh when full: jobs keep the specs they have.
type specCache struct {
	mu    sync.Mutex
	specs map[string]*jobSpec
}

// maxSpecCache bounds the cache: a few hundred bytes per entry.
const maxSpecCache = 4096

// intern returns the shared spec equal to sp (sp itself the first time).
// Env is not part of the JSON: it is derived from EnvKey, and a spec is
// interned only once its Env is set.
func (c *specCache) intern(sp *jobSpec) *jobSpec {
	key, err := json.Marshal(sp)
	if err != nil {
		return sp // cannot happen for these field types; unshared is still right
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, ok := c.specs[string(key)]; ok {
		return have
	}
	if c.specs == nil || len(c.specs) >= maxSpecCache {
		c.specs = map[string]*jobSpec{}
	}
	c.specs[string(key)] = sp
	return sp
}

// UnmarshalJSON decodes a stored job record into a spec of its own
// (encoding/json cannot allocate an embedded pointer to an unexported
// type by itself, and decoding into a shared one would change it for
// every job that shares it).
func (j *job) UnmarshalJSON(data []byte) error {
	type plain job // the same fields, without this method
	if j.jobSpec == nil {
		j.jobSpec = &jobSpec{}
	} else {
		j.ownSpec()
	}
	return json.Unmarshal(data, (*plain)(j))
}

// outputPath is where the job's stdout goes: Output as stored by servers
// that kept the expanded path in each record, else the spec's pattern
// expanded for this job (its id, array id and index, name, user and
// working directory never change, so neither does the path).
func (j *job) outputPath() string {
	if j.Output != "" {
		return j.Output
	}
	return resolveOutput(j.OutputPattern, j)
}

// errorPath is where the job's stderr goes (see outputPath).
func (j *job) errorPath() string {
	switch {
	case j.Error != "":
		return j.Error
	case j.Output != "" || j.ErrorPattern == "":
		return j.outputPath()
	}
	return resolveOutput(j.ErrorPattern, j)
}
