package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
)

// An action request is bounded: 50,000 targets took 32 s and answered
// 77 MB. Whole arrays ("42") and ranges ("42_[3-9]") name many jobs in one
// target, and user/state selection names all of a user's jobs.
const (
	maxTargets       = api.MaxActionTargets
	maxTargetIndices = 100000 // array indices all ranges of one request expand to
	maxResultJobs    = 1000   // jobs the answer lists in full; the rest are counted by state
)

// signaler is an agent that can send a signal to a job without ending it
// (agent sessions can): cancel then asks first and kills after the grace
// time, as Slurm does.
type signaler interface {
	Signal(jobID uint64, sig string) error
}

// target is one target of an action resolved to jobs.
type target struct {
	name   string
	jobs   []*job
	single bool // one job named on its own: a state mismatch is an error
	ended  bool // not live: err is worded by the archive (notLive)
	err    string
}

// resolveTargetsLocked turns "42", "42_7" and "42_[3-9]" into live jobs:
// a plain id of an array is the whole array. s.mu held.
func (s *Server) resolveTargetsLocked(names []string) []target {
	arrays := s.arraysLocked()
	out := make([]target, 0, len(names))
	for _, name := range names {
		t := target{name: name}
		ref, err := jobs.ParseJobRef(name)
		elems := arrays[ref.ID]
		switch {
		case err != nil:
			t.err = err.Error()
		case ref.Indices == nil && len(elems) > 0:
			t.jobs = elems
		case ref.Indices == nil:
			if j := s.jobs[ref.ID]; j != nil {
				t.jobs, t.single = []*job{j}, true
			} else {
				t.err, t.ended = "no job "+name, true // worded by notLive
			}
		default:
			for _, j := range elems {
				if _, found := slices.BinarySearch(ref.Indices, j.ArrayIndex); found {
					t.jobs = append(t.jobs, j)
				}
			}
			if len(t.jobs) == 0 {
				t.err = fmt.Sprintf("no live element %s of array %d (ended elements: hpcsub history)", jobs.FormatIndices(ref.Indices), ref.ID)
			}
			t.single = len(ref.Indices) == 1
		}
		out = append(out, t)
	}
	return out
}

// arraysLocked indexes the live jobs of arrays by array id, each list in
// index order. s.mu held.
func (s *Server) arraysLocked() map[uint64][]*job {
	out := map[uint64][]*job{}
	for _, j := range s.jobs {
		if j.ArrayJobID != 0 {
			out[j.ArrayJobID] = append(out[j.ArrayJobID], j)
		}
	}
	for _, list := range out {
		sortJobs(list)
	}
	return out
}

// handleActions applies one action to many jobs in one request: the way
// to cancel a 2,000-element array, a range of it, or all of a user's
// pending jobs at once. All the changes are committed together before any
// is shown or sent to an agent.
func (s *Server) handleActions(w http.ResponseWriter, r *http.Request) {
	var req api.ActionRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	c := callerOf(r)
	admin := s.isAdmin(c.UID)
	plan, rerr := s.checkAction(c, admin, req)
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	now := time.Now()
	states := map[api.JobState]bool{}
	for _, st := range req.States {
		states[api.JobState(strings.ToUpper(st))] = true
	}

	s.mu.Lock()
	var targets []target
	if len(req.Targets) > 0 {
		targets = s.resolveTargetsLocked(req.Targets)
	} else {
		var mine []*job
		for _, j := range s.jobs {
			if j.User == plan.user && !api.Terminal(j.State) && (len(states) == 0 || states[j.State]) {
				mine = append(mine, j)
			}
		}
		sortJobs(mine)
		targets = []target{{name: "user " + plan.user, jobs: mine}}
	}
	var ids []uint64
	for i := range targets {
		t := &targets[i]
		kept := t.jobs[:0:0]
		for _, j := range t.jobs {
			if j.UID != c.UID && !admin {
				t.err, kept = fmt.Sprintf("belongs to another user (%s): you can change only your own jobs", j.User), nil
				break
			}
			if len(states) == 0 || states[j.State] {
				kept = append(kept, j)
			}
		}
		t.jobs = kept
		for _, j := range kept {
			ids = append(ids, j.ID)
		}
	}
	s.mu.Unlock()
	for i := range targets {
		if t := &targets[i]; t.ended {
			if ref, err := jobs.ParseJobRef(t.name); err == nil {
				err := s.notLive(&c, ref.ID)
				t.err = err.Error()
				if errors.Is(err, ErrNotFound) {
					t.err += ": see `hpcsub queue --me` or `hpcsub history`"
				}
			}
		}
	}

	// One commit for every change; why[id] says what became of each job.
	why := map[uint64]string{}
	_, err := s.updateJobs(ids, func(j *job) error {
		what := s.applyLocked(j, req.Action, plan, c, now)
		why[j.ID] = what
		if what != "changed" && what != "running" {
			return skipJob
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	var running []uint64
	failedSignal := map[uint64]error{}
	for _, id := range ids {
		switch why[id] {
		case "running":
			running = append(running, id)
			s.terminate(id, "cancelled by user")
		case "signal":
			if err := s.signalJob(id, plan.signal); err != nil {
				failedSignal[id] = err
			}
		}
	}
	if len(running) > 0 {
		// Answer with the end state when it comes soon, as for one job.
		s.waitAllTerminal(r.Context(), running, 3*time.Second)
	}
	s.Kick()
	resp := api.ActionResponse{Results: make([]api.ActionResult, 0, len(targets))}
	listed := 0
	for _, t := range targets {
		res := api.ActionResult{Target: t.name, Error: t.err}
		for _, j := range t.jobs {
			switch w := why[j.ID]; {
			case w == "changed" || w == "running" || w == "signal":
				if err := failedSignal[j.ID]; err != nil && res.Error == "" {
					res.Error = fmt.Sprintf("job %s: %v", jobLabel(j), err)
				}
				aj := s.apiJob(j.ID)
				if listed >= maxResultJobs { // keep the answer compact: counted, not listed
					if res.More == nil {
						res.More = map[api.JobState]int{}
					}
					res.More[aj.State]++
					continue
				}
				listed++
				aj.History = nil
				res.Jobs = append(res.Jobs, aj)
			case t.single && res.Error == "":
				res.Error = w
			}
		}
		if len(res.Jobs) == 0 && len(res.More) == 0 && res.Error == "" && len(req.Targets) > 0 {
			res.Error = "no element is in a state where " + req.Action + " applies"
		}
		resp.Results = append(resp.Results, res)
	}
	writeJSON(w, http.StatusOK, resp)
}

// actionPlan is a checked action request.
type actionPlan struct {
	user     string // whose jobs, when no targets are named
	signal   string
	walltime time.Duration
	priority *int
	admin    bool
}

func (s *Server) checkAction(c Caller, admin bool, req api.ActionRequest) (actionPlan, *requestError) {
	p := actionPlan{admin: admin}
	switch req.Action {
	case api.ActionCancel, api.ActionHold, api.ActionRelease:
	case api.ActionSignal:
		name := strings.ToUpper(strings.TrimSpace(req.Signal))
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if unix.SignalNum(name) == 0 || name == "SIGKILL" || name == "SIGSTOP" {
			return p, refuse(http.StatusBadRequest, "signal %q: use a signal a job can handle, such as SIGUSR1, SIGTERM or SIGINT (plain cancel ends a job)", req.Signal)
		}
		p.signal = name
	case api.ActionUpdate:
		if req.Walltime == "" && req.Priority == nil {
			return p, refuse(http.StatusBadRequest, "update needs --walltime or --priority")
		}
		if req.Walltime != "" {
			d, err := jobs.ParseDuration(req.Walltime)
			if err != nil || d < time.Second {
				return p, refuse(http.StatusBadRequest, "walltime %q: use a duration such as \"30m\" or \"1-02:00:00\"", req.Walltime)
			}
			p.walltime = d
		}
		if req.Priority != nil && (*req.Priority < 0 || *req.Priority > 1000) {
			return p, refuse(http.StatusBadRequest, "priority must be 0..1000")
		}
		p.priority = req.Priority
	default:
		return p, refuse(http.StatusBadRequest, "unknown action %q: cancel, hold, release, signal or update", req.Action)
	}
	if len(req.Targets) > maxTargets {
		return p, refuse(http.StatusRequestEntityTooLarge, "%d targets: at most %d in one request; name a whole array by its id (42) or a range (42_[3-9]), select by --user/--state, or split the request", len(req.Targets), maxTargets)
	}
	indices := 0
	for _, name := range req.Targets {
		if ref, err := jobs.ParseJobRef(name); err == nil { // a bad one is answered per target
			if indices += len(ref.Indices); indices > maxTargetIndices {
				return p, refuse(http.StatusRequestEntityTooLarge, "the targets' ranges name more than %d array elements: at most %d in one request; name a whole array by its id (42) or split the request", maxTargetIndices, maxTargetIndices)
			}
		}
	}
	for _, st := range req.States {
		if !knownState(api.JobState(strings.ToUpper(st))) {
			return p, refuse(http.StatusBadRequest, "unknown state %q", st)
		}
	}
	if len(req.Targets) == 0 {
		if req.User == "" {
			return p, refuse(http.StatusBadRequest, "name jobs (42, 42_7, 42_[3-9]) or a user (--user NAME)")
		}
		self, err := lookupIdentity(c.UID)
		if req.User != self.name && !admin {
			return p, refuse(http.StatusForbidden, "you can change only your own jobs, not %s's", req.User)
		}
		if err != nil && !admin {
			return p, refuse(http.StatusForbidden, "%v", err)
		}
		p.user = req.User
	}
	return p, nil
}

func knownState(s api.JobState) bool {
	switch s {
	case api.StatePending, api.StateHeld, api.StateRunning, api.StateCheckpointing, api.StateRequeued,
		api.StateCompleted, api.StateFailed, api.StateTimeout, api.StateOutOfMemory, api.StateCancelled, api.StateNodeFail:
		return true
	}
	return false
}

// applyLocked applies action to one job. It answers "changed" (a state
// change to store), "running" (a cancel to deliver to the agent too),
// "signal" (a signal to send), or why the action does not apply.
func (s *Server) applyLocked(j *job, action string, p actionPlan, c Caller, now time.Time) string {
	switch action {
	case api.ActionCancel:
		switch {
		case api.Terminal(j.State):
			return fmt.Sprintf("job %s already ended (%s)", jobLabel(j), j.State)
		case j.CancelRequested:
			return fmt.Sprintf("job %s is already being cancelled", jobLabel(j))
		case j.State == api.StateRunning || j.State == api.StateCheckpointing:
			j.CancelRequested = true
			return "running"
		}
		j.CancelRequested = true
		j.to(api.StateCancelled, fmt.Sprintf("cancelled by uid %d", c.UID), now)
		return "changed"
	case api.ActionHold, api.ActionRelease:
		from, to, reason := api.StatePending, api.StateHeld, "held by user"
		if action == api.ActionRelease {
			from, to, reason = api.StateHeld, api.StatePending, "released by user"
		}
		if j.State != from {
			return fmt.Sprintf("job %s is %s, not %s", jobLabel(j), j.State, from)
		}
		j.to(to, reason, now)
		return "changed"
	case api.ActionSignal:
		if j.State != api.StateRunning {
			return fmt.Sprintf("job %s is %s: only running jobs get signals", jobLabel(j), j.State)
		}
		return "signal"
	case api.ActionUpdate:
		if j.State != api.StatePending && j.State != api.StateHeld {
			return fmt.Sprintf("job %s is %s: only pending or held jobs can be updated", jobLabel(j), j.State)
		}
		j.ownSpec() // the spec may be shared with other jobs
		if p.walltime > 0 {
			if p.walltime > j.Walltime && !p.admin {
				return fmt.Sprintf("job %s: you may only lower the walltime (now %s)", jobLabel(j), j.Walltime)
			}
			j.Walltime = p.walltime
		}
		if p.priority != nil {
			if *p.priority > j.Priority && !p.admin {
				return fmt.Sprintf("job %s: you may only lower the priority (now %d)", jobLabel(j), j.Priority)
			}
			j.Priority = *p.priority
		}
		j.History = append(j.History, api.Transition{Time: now, State: j.State,
			Reason: fmt.Sprintf("updated by uid %d: walltime %s, priority %d", c.UID, j.Walltime, j.Priority)})
		return "changed"
	}
	return "unknown action"
}

// jobLabel names a job as users write it: 42, or 42_7 for an element.
func jobLabel(j *job) string {
	if j.ArrayJobID != 0 {
		return fmt.Sprintf("%d_%d", j.ArrayJobID, j.ArrayIndex)
	}
	return fmt.Sprint(j.ID)
}

// terminate ends a running job as Slurm does: SIGTERM (or the job's
// cancel_signal) to its processes, then after the grace time SIGKILL to
// all of them (the agent's Cancel).
// Agents that cannot signal are cancelled at once.
func (s *Server) terminate(id uint64, reason string) {
	s.mu.Lock()
	var agents []Agent
	sig := "SIGTERM"
	if j := s.jobs[id]; j != nil {
		agents = s.agentsOfLocked(j)
		if j.CancelSignal != "" {
			sig = j.CancelSignal
		}
	}
	s.mu.Unlock()
	grace := s.cfg.CancelGrace
	gentle := false
	for _, a := range agents {
		if sg, ok := a.(signaler); ok && grace > 0 {
			if err := sg.Signal(id, sig); err == nil {
				gentle = true
				continue
			}
		}
		if err := a.Cancel(id, reason); err != nil {
			s.log.Warn("cancel on agent", "job", id, "err", err)
		}
	}
	if !gentle {
		return
	}
	time.AfterFunc(grace, func() {
		s.mu.Lock()
		cur, live := s.jobs[id] // records are replaced on every commit
		done := !live || api.Terminal(cur.State)
		s.mu.Unlock()
		if done {
			return
		}
		for _, a := range agents {
			if err := a.Cancel(id, reason+" (killed after the grace time)"); err != nil {
				s.log.Warn("kill after grace", "job", id, "err", err)
			}
		}
	})
}

// signalJob sends sig to a running job on each of its nodes.
func (s *Server) signalJob(id uint64, sig string) error {
	s.mu.Lock()
	var agents []Agent
	if j := s.jobs[id]; j != nil {
		agents = s.agentsOfLocked(j)
	}
	s.mu.Unlock()
	for _, a := range agents {
		sg, ok := a.(signaler)
		if !ok {
			return fmt.Errorf("the agent of job %d cannot send signals", id)
		}
		if err := sg.Signal(id, sig); err != nil {
			return err
		}
	}
	return nil
}

// waitAllTerminal waits until every job of ids ended, ctx ends or d passes.
func (s *Server) waitAllTerminal(ctx context.Context, ids []uint64, d time.Duration) {
	deadline := time.Now().Add(d)
	for _, id := range ids {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		s.waitTerminal(ctx, id, left)
	}
}

// arrayView lists every element of array arrayID, live or archived, in
// index order; another user's elements show their public part only.
func (s *Server) arrayView(arrayID uint64, c Caller) []api.Job {
	s.mu.Lock()
	n := s.arrayCountLocked(arrayID)
	out := make([]api.Job, 0, n)
	var ended []uint64
	for id := arrayID; id < arrayID+uint64(n); id++ {
		if j, ok := s.jobs[id]; ok && j.ArrayJobID == arrayID {
			aj := j.apiJob()
			aj.History = nil
			out = append(out, aj)
		} else if !ok {
			ended = append(ended, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ended {
		if aj, ok, err := s.archivedJob(id); err == nil && ok && aj.ArrayJobID == arrayID {
			aj.History = nil
			out = append(out, aj)
		}
	}
	admin := s.isAdmin(c.UID)
	for i := range out {
		if uint32(out[i].UID) != c.UID && !admin {
			out[i] = redact(out[i])
		}
	}
	slices.SortFunc(out, func(a, b api.Job) int { return cmpUint(a.ID, b.ID) })
	return out
}
