package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

// snapshotLocked builds the placer's input; s.mu held.
func (s *Server) snapshotLocked() placement.Snapshot {
	snap, _ := s.snapshotDepsLocked()
	return snap
}

// snapshotDepsLocked is snapshotLocked, and the waiting jobs with
// dependencies (for cancelUnsatisfiable), found on the same walk of every
// live job; s.mu held.
func (s *Server) snapshotDepsLocked() (placement.Snapshot, []*job) {
	snap := placement.Snapshot{Nodes: s.placementNodesLocked()}
	arrayRunning := map[uint64]int{}
	userRunning := map[uint32]int{}
	var pending, withDeps []*job
	for _, j := range s.jobs {
		if j.State == api.StatePending && !j.CancelRequested && (len(s.releasing) == 0 || !s.releasing[j.ID]) {
			pending = append(pending, j)
		}
		if waitsOnDeps(j) {
			withDeps = append(withDeps, j)
		}
		if active(j.State) {
			userRunning[j.UID]++
			start := j.Submit
			if j.Start != nil {
				start = *j.Start
			}
			snap.Running = append(snap.Running, j.placementRunning(start))
			if j.ArrayJobID != 0 {
				arrayRunning[j.ArrayJobID]++
			}
		}
	}
	// Pending jobs in id order: which array tasks fill the free
	// max_running slots must not depend on map order.
	// (With 100,000 pending jobs this runs under s.mu once a pass: a
	// linear ordering by dense ids and one allocation of snap.Pending.)
	sortByID(pending) // idorder.go
	snap.Pending = make([]placement.Job, 0, len(pending))
	for _, j := range pending {
		if len(j.Deps) > 0 && s.depsWaitLocked(j) {
			continue
		}
		if j.ArrayJobID != 0 && j.ArrayMaxRunning > 0 {
			// max_running caps the array's tasks that run at once: only
			// as many tasks as free slots are offered to the placer.
			if arrayRunning[j.ArrayJobID] >= j.ArrayMaxRunning {
				j.waitReason, j.reservedStart = "ArrayTaskLimit", time.Time{}
				continue
			}
			arrayRunning[j.ArrayJobID]++
		}
		if !s.runningLimitLocked(userRunning, j) {
			continue
		}
		snap.Pending = append(snap.Pending, j.placementJob())
	}
	return snap, withDeps
}

// scheduleOnce runs one placement pass and carries out its starts: each
// start is committed as RUNNING before its agent is told, so a crash in
// between can lose a launch (found at reconcile) but never run a job twice.
func (s *Server) scheduleOnce(ctx context.Context, now time.Time) {
	t0 := time.Now() // not now: tests pass a fixed time
	s.mu.Lock()
	snap, withDeps := s.snapshotDepsLocked()
	s.setFairShareLocked(snap.Pending, now)
	s.mu.Unlock()
	// Not offered to the placer (their dependencies are not met), the
	// jobs whose dependencies never will be are ended now.
	s.cancelUnsatisfiable(withDeps, now)
	if len(snap.Pending) == 0 {
		return
	}
	dec := s.placer.plan(snap, now, s.cfg.Policy) // placer.go
	planned := time.Now()
	s.preempt(dec.Preemptions, now)

	starts := map[uint64]placement.Start{}
	ids := make([]uint64, 0, len(dec.Starts))
	for _, st := range dec.Starts {
		starts[st.JobID] = st
		ids = append(ids, st.JobID)
	}
	s.mu.Lock()
	for _, w := range dec.Waiting {
		if j, ok := s.jobs[w.JobID]; ok {
			j.waitReason = string(w.Reason) // derived, never stored: set in place
			j.reservedStart = w.ReservedStart
		}
	}
	s.mu.Unlock()
	// Committed before any agent is told; a job that changed since the
	// snapshot (cancelled, held) is left alone.
	changed, err := s.updateJobs(ids, func(j *job) error {
		if j.State != api.StatePending || j.CancelRequested || s.releasing[j.ID] {
			return skipJob
		}
		st := starts[j.ID]
		t := now
		j.Start = &t
		j.Alloc = st.Nodes
		j.Attempt = uint64(now.UnixNano())
		j.waitReason, j.reservedStart = "", time.Time{}
		j.to(api.StateRunning, "started on "+strings.Join(j.nodeNames(), ","), now)
		j.Reason = "" // the start reason lives in the history only
		// Set with the record installed (s.mu held): from the moment the
		// job shows RUNNING until its launch is handed over.
		s.launching[j.ID] = true
		return nil
	})
	if err != nil {
		// Not durable: nothing changed and nothing was launched; the jobs
		// stay in the queue for the next pass.
		s.mu.Lock()
		for _, id := range ids {
			delete(s.launching, id)
		}
		s.mu.Unlock()
		s.log.Error("persist starts", "err", err)
		return
	}
	started := make([]uint64, 0, len(changed))
	for _, j := range changed {
		started = append(started, j.ID)
	}
	// Benchmarks read this line for the pass time (docs/benchmarks.md).
	s.log.Debug("scheduling pass", "pending", len(snap.Pending), "started", len(started),
		"plan", planned.Sub(t0), "commit", time.Since(planned))
	// Launches fork shims and create cgroups: run them side by side, and
	// never make the scheduling loop wait for one (a launch that hangs must
	// not stop every other job from starting).
	for _, id := range started {
		s.launches.Add(1)
		go func() {
			defer s.launches.Done()
			defer func() {
				s.mu.Lock()
				delete(s.launching, id)
				s.mu.Unlock()
			}()
			s.launch(ctx, id)
		}()
	}
}

// launch hands a started job to the agents of its nodes.
func (s *Server) launch(ctx context.Context, id uint64) {
	s.mu.Lock()
	j := s.jobs[id] // the record as committed at start; never edited in place
	type part struct {
		a    Agent
		node string
		asg  api.Assignment
	}
	var parts []part
	var missing string
	for _, na := range j.Alloc {
		a, ok := s.agents[na.Node]
		if !ok {
			missing = na.Node
			break
		}
		parts = append(parts, part{a, na.Node, j.assignment(na)})
	}
	s.mu.Unlock()
	if missing != "" {
		s.endLost(id, "node "+missing+" has no agent", time.Now())
		return
	}
	for _, p := range parts {
		if err := p.a.Launch(ctx, p.asg); err != nil {
			// The node's failure, not the job's. The gang rule in Report
			// stops the parts already launched.
			s.launchFailed(id, p.node, err)
			return
		}
		if _, remote := p.a.(*agentSession); !remote {
			// In process, Launch returns once the job runs: the node
			// worked. A remote agent only queued it; its outcome tells.
			s.hostWorked(p.node)
		}
		// A cancel that arrived while the job was being launched found no
		// process to kill yet: send it now that there is one.
		s.mu.Lock()
		cancel := s.jobs[id].CancelRequested
		s.mu.Unlock()
		if cancel {
			if err := p.a.Cancel(id, "cancelled by user"); err != nil {
				s.log.Warn("cancel after launch", "job", id, "err", err)
			}
		}
	}
}

// Report records how a job's part ended on a node, durably, then lets the
// agent forget it. A job the system stopped to requeue goes back to the
// queue whatever its exit; exit code 85 asks for a restart too.
func (s *Server) Report(o api.Outcome) {
	now := time.Now()
	if o.End.IsZero() {
		o.End = now
	}
	orig := o // as reported, before a gang's parts are combined
	var (
		partOnly bool    // a gang part that is not the last: recorded, job runs on
		stop     []Agent // the rest of a gang to stop
		ignored  bool    // from a node outside the allocation
		earlier  bool    // of an earlier run (attempt) than the job's current one
		done     bool    // nothing to record: already ended or back in the queue
	)
	_, err := s.updateJob(nil, o.JobID, func(j *job) error {
		if api.Terminal(j.State) || j.State == api.StatePending {
			done = true
			return skipJob
		}
		if !j.onNode(o.Node) {
			ignored = true
			return skipJob
		}
		if o.Attempt != 0 && j.Attempt != 0 && o.Attempt != j.Attempt {
			// Decided with the record in hand: the job was requeued and
			// started again meanwhile, and this run is not the current one.
			earlier = true
			return skipJob
		}
		if len(j.Alloc) > 1 {
			var last bool
			o, last, stop = s.gangPartLocked(j, o)
			if !last {
				partOnly = true
				return nil
			}
		}
		s.applyOutcome(j, o)
		// The agent still holds this run's state: a requeued job must not
		// start again until it is released. Set before the commit so the
		// scheduler can't start the installed record in between.
		s.releasing[j.ID] = true
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound) || done:
		s.release(o)
		return
	case ignored:
		s.log.Warn("ignoring an outcome from a node outside the job's allocation", "job", o.JobID, "node", o.Node)
		return
	case earlier:
		// Not released: the node may run the job's current attempt.
		s.log.Warn("ignoring the outcome of an earlier run", "job", o.JobID, "node", o.Node, "attempt", o.Attempt)
		return
	case err != nil:
		// Nothing changed: the job still shows RUNNING. The agent keeps
		// the outcome until released, and it is reported again on the
		// next tick (and at the next start's reconcile).
		s.log.Error("persist outcome; will retry", "job", o.JobID, "err", err)
		s.mu.Lock()
		delete(s.releasing, o.JobID)
		s.mu.Unlock()
		s.keepUnstored(orig)
		return
	}
	if orig.HostFailure && !orig.NeverStarted {
		s.hostFailed(orig.Node, orig.JobID, orig.Reason)
	} else if !orig.HostFailure {
		s.hostWorked(orig.Node) // the job's own end: the node ran it
	}
	switch {
	case partOnly:
		s.release(o)
		for _, a := range stop {
			if err := a.Cancel(o.JobID, "another node of the job ended: "+o.Reason); err != nil {
				s.log.Warn("stop the rest of a gang", "job", o.JobID, "err", err)
			}
		}
		return
	}
	// Release first: a requeued job (exit 85, drain) may start again on
	// the same node, which needs the old run's state gone; until then the
	// scheduler leaves it alone.
	s.release(o)
	s.mu.Lock()
	delete(s.releasing, o.JobID)
	s.mu.Unlock()
	s.Kick()
}

// applyOutcome records the job's final outcome o on j (a copy being
// changed): its end state, or back to the queue when the system stopped
// it, it never started, or it asked to run again (exit 85, retry_on_exit):
// checkpoint.Decide is the rule.
func (s *Server) applyOutcome(j *job, o api.Outcome) {
	if o.HostFailure {
		// What the node reports then is not the job's exit.
		o.State, o.ExitCode, o.Signal = api.StateNodeFail, 0, ""
	}
	u := o.Usage
	u.GPUSeconds = j.gpuSeconds(u.ElapsedSeconds)
	j.Usage = &u
	run := j.startRun(o, u)
	code := o.ExitCode
	j.ExitCode = &code
	j.Signal = o.Signal
	if o.HostFailure && !o.NeverStarted && !j.CancelRequested {
		// The node's failure, not the job's: hostfail.go's rule.
		j.ExitCode = nil
		applyHostFailure(j, o)
	} else {
		// The restart rule (package checkpoint) decides: requeued, or ended.
		j.finishRun(o, &run)
	}
	j.endRun(run, o.NeverStarted)
}

func (s *Server) release(o api.Outcome) {
	s.mu.Lock()
	a := s.agents[o.Node]
	s.mu.Unlock()
	if a == nil {
		return
	}
	if err := a.Release(o.JobID); err != nil {
		s.log.Warn("release job on agent", "job", o.JobID, "node", o.Node, "err", err)
	}
}

// gangPartLocked records the outcome of one node's part of a multi-node
// job. Until every part has reported it returns done=false, and the
// agents to stop when this part is the first to fail: a gang runs
// together or not at all. Once all parts are in, it returns the job's
// outcome: the earliest part that did not complete (else a completed
// one), with CPU time summed and peak memory the largest. s.mu held.
func (s *Server) gangPartLocked(j *job, o api.Outcome) (api.Outcome, bool, []Agent) {
	if j.Parts == nil {
		j.Parts = map[string]api.Outcome{}
	}
	first := len(j.Parts) == 0 || allCompleted(j.Parts)
	j.Parts[o.Node] = o
	if len(j.Parts) < len(j.Alloc) {
		var stop []Agent
		if o.State != api.StateCompleted && first {
			for _, a := range j.Alloc {
				if _, ended := j.Parts[a.Node]; !ended && s.agents[a.Node] != nil {
					stop = append(stop, s.agents[a.Node])
				}
			}
		}
		return o, false, stop
	}
	var out api.Outcome
	var usage api.Usage
	var gpus []api.GPUUsage
	picked := false
	for _, a := range j.Alloc {
		p := j.Parts[a.Node]
		usage.CPUSeconds += p.Usage.CPUSeconds
		usage.PeakMemory = max(usage.PeakMemory, p.Usage.PeakMemory)
		usage.ElapsedSeconds = max(usage.ElapsedSeconds, p.Usage.ElapsedSeconds)
		gpus = append(gpus, p.GPUUsage...) // each part's own GPUs, named by node
		if !picked || (p.State != api.StateCompleted && (out.State == api.StateCompleted || p.End.Before(out.End))) {
			out, picked = p, true
		}
	}
	if out.State != api.StateCompleted {
		out.Reason = "on " + out.Node + ": " + out.Reason
	}
	out.Usage, out.GPUUsage = usage, gpus
	out.Node = o.Node // the part reporting now is the one to release
	return out, true, nil
}

func allCompleted(parts map[string]api.Outcome) bool {
	for _, p := range parts {
		if p.State != api.StateCompleted {
			return false
		}
	}
	return true
}
