package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
	"github.com/hpc-sched/hpc/placement"
)

// applySubmitOptions applies the submit's overrides and --after* flags to
// the parsed file.
func applySubmitOptions(spec *jobs.Spec, req api.SubmitRequest) *requestError {
	if o := req.Overrides; o != nil {
		err := spec.Override(jobs.Overrides{Name: o.Name, Walltime: o.Walltime, Output: o.Output, Error: o.Error, Priority: o.Priority})
		if err != nil {
			return refuse(http.StatusBadRequest, "%v", err)
		}
	}
	for _, d := range req.Dependencies {
		deps, err := jobs.ParseDependencies(d)
		if err != nil {
			return refuse(http.StatusBadRequest, "%v", err)
		}
		spec.DependsOn = append(spec.DependsOn, deps...)
	}
	return nil
}

// dryRun asks the placer what it would do with the job now, on a snapshot
// of the cluster with the job added at the end of its priority class, as
// `sbatch --test-only` does. Nothing is created or changed.
func (s *Server) dryRun(tmpl *job, now time.Time) *api.DryRun {
	s.mu.Lock()
	snap := s.snapshotLocked()
	probe := *tmpl
	var maxID uint64
	for id := range s.jobs {
		maxID = max(maxID, id)
	}
	waiting := len(tmpl.Deps) > 0 && s.depsWaitLocked(&probe)
	s.mu.Unlock()
	probe.ID, probe.Submit = maxID+1, now
	out := &api.DryRun{Nodes: []string{}, GPUs: map[string][]int{}}
	if waiting {
		out.Reason = probe.waitReason
		out.Detail = "it starts once its dependencies are met"
		return out
	}
	snap.Pending = append(snap.Pending, probe.placementJob())
	dec := placement.Plan(snap, now, s.cfg.Policy)
	if s.cfg.Policy.Depth != placement.DepthAll && !startsOrReserved(dec, probe.ID) {
		// The cluster reserves for the first blocked jobs only: ask once
		// more with every blocked job reserved (conservative), so the
		// answer says when it would start as the queue stands now.
		p := s.cfg.Policy
		p.Depth = placement.DepthAll
		dec = placement.Plan(snap, now, p)
	}
	for _, st := range dec.Starts {
		if st.JobID != probe.ID {
			continue
		}
		t := now
		out.CanRun, out.Start, out.CPUIDs = true, &t, map[string][]int{}
		for _, a := range st.Nodes {
			out.Nodes = append(out.Nodes, a.Node)
			out.GPUs[a.Node] = a.GPUs
			out.CPUIDs[a.Node] = a.CPUs
		}
		return out
	}
	for _, w := range dec.Waiting {
		if w.JobID != probe.ID {
			continue
		}
		out.Reason, out.Detail = string(w.Reason), w.Detail
		if !w.ReservedStart.IsZero() {
			t := w.ReservedStart
			out.Start = &t
			out.Nodes = append(out.Nodes, w.ReservedNodes...)
		}
	}
	return out
}

// explainInfeasible words a refusal by what the job asked for: a GPU
// refusal of a job that asked for no features does not mention them.
func explainInfeasible(err error, j *job) error {
	msg := err.Error()
	if len(j.Features) == 0 {
		msg = strings.ReplaceAll(msg, "no node with the features has", "no node has")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// startsOrReserved reports whether the decisions start job id or give it
// a reservation.
func startsOrReserved(dec placement.Decisions, id uint64) bool {
	for _, st := range dec.Starts {
		if st.JobID == id {
			return true
		}
	}
	for _, w := range dec.Waiting {
		if w.JobID == id && !w.ReservedStart.IsZero() {
			return true
		}
	}
	return false
}
