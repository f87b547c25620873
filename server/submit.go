package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
)

// envBlobPrefix names environment blobs in the store.
const envBlobPrefix = "env/"

// Limits on a submit request beyond what the job file itself bounds.
const (
	maxEnvEntries = 4096
	maxEnvBytes   = 1 << 20
	maxPathBytes  = 4096
)

// requestError is a refusal with the HTTP status that says what kind.
type requestError struct {
	status int
	msg    string
	diags  []string
}

func (e *requestError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) *requestError {
	return &requestError{status: status, msg: fmt.Sprintf(format, args...)}
}

// Caller is who sent a request, as the socket's peer credentials say.
type Caller struct {
	UID uint32
	GID uint32
}

// identity is a caller resolved to a Unix account.
type identity struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
	group  string // primary group name: the default account
}

func lookupIdentity(uid uint32) (identity, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return identity{}, fmt.Errorf("uid %d has no account on the server: %w", uid, err)
	}
	id := identity{name: u.Username, uid: uid}
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	id.gid = uint32(gid)
	id.group = u.Gid
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		id.group = g.Name
	}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				id.groups = append(id.groups, uint32(n))
			}
		}
	}
	return id, nil
}

// Submit validates a job file and stores its job (or array tasks)
// durably; it returns only after the commit.
func (s *Server) Submit(c Caller, req api.SubmitRequest) (api.SubmitResponse, error) {
	if err := checkSubmitRequest(req); err != nil {
		return api.SubmitResponse{}, err
	}
	spec, err := jobs.ParseWith(req.Filename, []byte(req.Source), req.Vars, jobs.Options{ReadScript: sentFile(req.Files)})
	if err != nil {
		var je *jobs.Error
		if errors.As(err, &je) {
			lines := je.Lines()
			return api.SubmitResponse{}, &requestError{status: http.StatusBadRequest,
				msg: fmt.Sprintf("%s: job file has %d error(s): fix them and submit again (hpcsub validate %s)", req.Filename, len(lines), filepath.Base(req.Filename)), diags: lines}
		}
		return api.SubmitResponse{}, refuse(http.StatusBadRequest, "%v", err)
	}
	if rerr := applySubmitOptions(spec, req); rerr != nil {
		return api.SubmitResponse{}, rerr
	}
	who, err := lookupIdentity(c.UID)
	if err != nil {
		return api.SubmitResponse{}, refuse(http.StatusForbidden, "%v", err)
	}
	if who.uid == 0 && !s.cfg.AllowRoot {
		return api.SubmitResponse{}, refuse(http.StatusForbidden, "jobs may not run as root on this cluster: submit as an ordinary user")
	}
	if err := s.checkSubmitPolicy(c, who, spec); err != nil {
		return api.SubmitResponse{}, err
	}
	tmpl, rerr := s.jobTemplate(spec, who, req)
	if rerr != nil {
		return api.SubmitResponse{}, rerr
	}
	s.mu.Lock()
	tmpl.Deps, rerr = s.resolveDepsLocked(spec.DependsOn, who.uid, s.isAdmin(c.UID))
	s.mu.Unlock()
	if rerr != nil {
		return api.SubmitResponse{}, rerr
	}
	if err := s.checkFeasible(tmpl.placementJob()); err != nil { // nodeview.go
		return api.SubmitResponse{}, refuse(http.StatusUnprocessableEntity, "job can never run on this cluster: %v", explainInfeasible(err, tmpl))
	}
	if req.DryRun {
		return api.SubmitResponse{IDs: []uint64{}, DryRun: s.dryRun(tmpl, time.Now())}, nil
	}
	tmpl.jobSpec = s.specs.intern(tmpl.jobSpec) // every task shares it (jobspec.go)

	if tmpl.EnvKey != "" && !s.envs.isStored(tmpl.EnvKey) {
		data, err := json.Marshal(tmpl.Env)
		if err == nil {
			err = s.store.PutBlob(envBlobPrefix+tmpl.EnvKey, data)
		}
		if err != nil {
			return api.SubmitResponse{}, refuse(http.StatusInternalServerError, "could not store the job's environment: %v", err)
		}
		s.envs.markStored(tmpl.EnvKey)
	}
	n := 1
	if spec.Array != nil {
		n = spec.Array.Count
	}
	if err := s.reserveQueued(who.uid, n); err != nil {
		return api.SubmitResponse{}, err
	}
	now := time.Now()
	// Every task's first transition, in one backing array for all of them
	// (cap 1: a task's next transition reallocates its own).
	tmpl.History = []api.Transition{{Time: now, State: api.StatePending, Reason: "submitted"}}
	created := make([]*job, 0, n)
	ids, err := s.store.CreateJobs(n, func(id uint64, i int) ([]byte, error) {
		j := tmpl.instance(id, i, spec, now, s.cfg.CheckpointRoot)
		if req.Overrides != nil && req.Overrides.Hold {
			j.to(api.StateHeld, "held at submit (release with hpcsub release)", now)
		}
		if len(created) > i {
			created = created[:i] // the batch retried this transaction
		}
		created = append(created, j)
		return json.Marshal(j)
	})
	if err != nil {
		s.cancelReserve(who.uid, n)
		return api.SubmitResponse{}, refuse(http.StatusInternalServerError, "could not store the job: %v", err)
	}
	s.mu.Lock()
	for _, j := range created {
		s.jobs[j.ID] = j // counted by reserveQueued
		s.countStateLocked(nil, j)
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.Kick()
	return api.SubmitResponse{IDs: ids}, nil
}

func checkSubmitRequest(req api.SubmitRequest) error {
	switch {
	case req.Filename == "" || len(req.Filename) > maxPathBytes:
		return refuse(http.StatusBadRequest, "filename must be 1..%d bytes", maxPathBytes)
	case !filepath.IsAbs(req.Cwd) || len(req.Cwd) > maxPathBytes || strings.ContainsRune(req.Cwd, 0):
		return refuse(http.StatusBadRequest, "cwd must be an absolute path of at most %d bytes", maxPathBytes)
	case len(req.Files) > 1:
		return refuse(http.StatusBadRequest, "files holds %d entries; a job has at most one script_file", len(req.Files))
	case req.Umask != nil && *req.Umask > 0o777:
		// Masking silently would turn 0xFFFFFFFF into 0777: output files of mode 000.
		return refuse(http.StatusBadRequest, "umask %#o is not a file mode mask: it must be at most 0777", *req.Umask)
	case len(req.Env) > maxEnvEntries:
		return refuse(http.StatusBadRequest, "environment has %d variables, at most %d allowed", len(req.Env), maxEnvEntries)
	}
	size := 0
	for k, v := range req.Env {
		size += len(k) + len(v)
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return refuse(http.StatusBadRequest, "environment variable %q is malformed", k)
		}
	}
	if size > maxEnvBytes {
		return refuse(http.StatusBadRequest, "environment is %d bytes, at most %d allowed", size, maxEnvBytes)
	}
	return nil
}

// jobTemplate is everything of a job that does not depend on its id.
func (s *Server) jobTemplate(spec *jobs.Spec, who identity, req api.SubmitRequest) (*job, *requestError) {
	wall := spec.Walltime
	if wall == 0 {
		wall = s.cfg.DefaultWalltime
	}
	if wall == 0 {
		return nil, refuse(http.StatusBadRequest, "%s: walltime is required on this cluster: add walltime = \"1h\" to the job block", req.Filename)
	}
	workdir := req.Cwd
	if spec.Task.Workdir != "" {
		workdir = spec.Task.Workdir
		if !filepath.IsAbs(workdir) {
			workdir = filepath.Join(req.Cwd, workdir)
		}
	}
	env := make(map[string]string, len(req.Env)+len(spec.Task.Env))
	for k, v := range req.Env {
		if !jobs.ReservedEnv(k) {
			env[k] = v
		}
	}
	for k, v := range spec.Task.Env {
		env[k] = v
	}
	account := spec.Account
	if account == "" {
		account = who.group
	}
	j := &job{ArrayIndex: -1, jobSpec: &jobSpec{
		Name: spec.Name, User: who.name, UID: who.uid, GID: who.gid, Groups: who.groups,
		Account: account, Priority: spec.Priority,
		Nodes: spec.Nodes, CPUs: spec.Resources.CPUs, Memory: spec.Resources.Memory,
		GPUCount: spec.Resources.GPU.Count, GPUModel: spec.Resources.GPU.Model,
		GPUMemory: spec.Resources.GPU.Memory, GPUNVLink: spec.Resources.GPU.Link == "nvlink", GPUShare: spec.Resources.GPU.Share,
		Features: spec.Features, Walltime: wall, Requeue: spec.Requeue,
		Script: spec.Task.Script, Workdir: workdir,
		Umask: 0o022,
	}}
	j.Env, j.EnvKey = s.envs.intern(env)
	if req.Umask != nil {
		j.Umask = *req.Umask & 0o777
	}
	if spec.Task.Command != "" {
		j.Argv = append([]string{spec.Task.Command}, spec.Task.Args...)
	}
	if c := spec.Checkpoint; c != nil {
		j.MaxRestarts, j.WarnSignal, j.WarnBefore = c.MaxRestarts, c.Signal, c.Warn
		j.CheckpointMode, j.CheckpointInterval = c.Mode, c.Interval
		j.RetryOnExit, j.OnFailure = c.RetryOnExit, c.OnFailure
	}
	j.Preemptible = spec.Preemptible
	if spec.Array != nil {
		j.ArrayMaxRunning = spec.Array.MaxRunning
		j.ArrayTaskCount = spec.Array.Count
	}
	j.SubmitDir = req.Cwd
	j.OutputPattern, j.ErrorPattern = spec.Output, spec.Error
	j.CancelSignal = spec.CancelSignal
	return j, nil
}

// instance is the template made into job id, task i of its submit.
func (t *job) instance(id uint64, i int, spec *jobs.Spec, now time.Time, ckptRoot string) *job {
	j := *t
	j.ID = id
	if spec.Array != nil {
		j.ArrayJobID = id - uint64(i)
		j.ArrayIndex = spec.Array.Index(i)
	}
	if spec.Checkpoint != nil {
		// Beside the job's other files (the shared filesystem of the
		// submit directory), so it is there on any node after a requeue.
		j.CheckpointDir = filepath.Join(j.Workdir, ".hpc-checkpoint", strconv.FormatUint(id, 10))
		if ckptRoot != "" {
			j.CheckpointDir = filepath.Join(ckptRoot, strconv.FormatUint(id, 10))
		}
	}
	// Output and Error stay empty: the paths are the spec's patterns
	// expanded for this task when asked (outputPath, errorPath).
	j.Submit = now
	if h := t.History; len(h) == 1 && h[0].Time.Equal(now) && h[0].State == api.StatePending {
		j.State, j.Reason, j.History = h[0].State, h[0].Reason, h[:1:1] // shared (Submit)
	} else {
		j.History = nil
		j.to(api.StatePending, "submitted", now)
	}
	return &j
}

// resolveOutput expands an output pattern and makes it absolute against
// the job's working directory, as Slurm does.
func resolveOutput(pattern string, j *job) string {
	arrayID := j.ID
	if j.ArrayJobID != 0 {
		arrayID = j.ArrayJobID
	}
	p := jobs.ExpandArrayPattern(pattern, j.ID, arrayID, j.ArrayIndex, j.Name, j.User)
	if !filepath.IsAbs(p) {
		p = filepath.Join(j.Workdir, p)
	}
	return p
}
