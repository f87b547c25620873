package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// The actions users and admins take on jobs and nodes. Each one is
// committed before it is shown or sent to an agent (updateJob/updateNode),
// and refuses with an error wrapping ErrNotFound, ErrForbidden,
// ErrInvalidState, ErrInvalid or ErrStore; on any error nothing changed.

// mayTouch refuses when c may not change job j (not theirs, not an admin).
func (s *Server) mayTouch(c Caller, j *job) error {
	if j.UID != c.UID && !s.isAdmin(c.UID) {
		return forbidden("belongs to another user (%s): you can change only your own jobs", j.User)
	}
	return nil
}

// agentsOfLocked lists the agents of the nodes of j's allocation; s.mu held.
func (s *Server) agentsOfLocked(j *job) []Agent {
	var out []Agent
	for _, a := range j.Alloc {
		if ag := s.agents[a.Node]; ag != nil {
			out = append(out, ag)
		}
	}
	return out
}

// CancelJob cancels job id for c: a pending or held job ends CANCELLED at
// once; a running one is marked cancel_requested, durably, and then its
// processes are killed. It waits (up to a few seconds, or until ctx ends)
// for a running job to end, and returns the job as it is then.
func (s *Server) CancelJob(ctx context.Context, c Caller, id uint64) (api.Job, error) {
	var agents []Agent
	j, err := s.updateJob(&c, id, func(j *job) error {
		if err := s.mayTouch(c, j); err != nil {
			return err
		}
		switch {
		case api.Terminal(j.State):
			return badState("job %d already ended (%s)", id, j.State)
		case active(j.State):
			j.CancelRequested = true
			agents = s.agentsOfLocked(j)
		default:
			j.CancelRequested = true
			j.to(api.StateCancelled, fmt.Sprintf("cancelled by uid %d", c.UID), time.Now())
		}
		return nil
	})
	if err != nil {
		return api.Job{}, err
	}
	// Sent only now that the cancel is durable: one acknowledged before a
	// crash is sent again at the next start. SIGTERM first, then SIGKILL
	// after the grace time, as Slurm does (arrays.go).
	if len(agents) > 0 {
		s.terminate(id, "cancelled by user")
		// Answer with the end state, as users expect from a cancel, unless
		// the kill takes long; the cancel is durable either way.
		s.waitTerminal(ctx, j.ID, 5*time.Second)
	}
	return s.apiJob(id), nil
}

// HoldJob keeps pending job id from starting until it is released.
func (s *Server) HoldJob(c Caller, id uint64) (api.Job, error) {
	return s.moveJob(c, id, api.StatePending, api.StateHeld, "held by user")
}

// ReleaseJob lets held job id be scheduled again.
func (s *Server) ReleaseJob(c Caller, id uint64) (api.Job, error) {
	return s.moveJob(c, id, api.StateHeld, api.StatePending, "released by user")
}

func (s *Server) moveJob(c Caller, id uint64, from, to api.JobState, reason string) (api.Job, error) {
	_, err := s.updateJob(&c, id, func(j *job) error {
		if err := s.mayTouch(c, j); err != nil {
			return err
		}
		if j.State != from {
			return badState("job %d is %s, not %s", id, j.State, from)
		}
		j.to(to, reason, time.Now())
		return nil
	})
	if err != nil {
		return api.Job{}, err
	}
	s.Kick()
	return s.apiJob(id), nil
}

// RequeueJob stops running job id and puts it back in the queue (using one
// of its restarts), as `scontrol requeue` does. The request is committed
// before the job is stopped, so after a crash the stop is still a requeue.
func (s *Server) RequeueJob(c Caller, id uint64) (api.Job, error) {
	var agents []Agent
	_, err := s.updateJob(&c, id, func(j *job) error {
		if err := s.mayTouch(c, j); err != nil {
			return err
		}
		switch {
		case j.State != api.StateRunning:
			return badState("job %d is %s: only a running job can be requeued", id, j.State)
		case j.CancelRequested:
			return badState("job %d is being cancelled", id)
		case j.Restarts >= j.maxRestarts():
			return badState("job %d has used all %d of its restarts", id, j.maxRestarts())
		}
		j.RequeueRequested = true
		agents = s.agentsOfLocked(j)
		return nil
	})
	if err != nil {
		return api.Job{}, err
	}
	for _, a := range agents {
		if err := a.Cancel(id, "requeued"); err != nil {
			s.log.Warn("stop job for requeue", "job", id, "err", err)
		}
	}
	return s.apiJob(id), nil
}

// DrainNode stops new jobs from starting on node name; with requeue its
// running jobs that allow it are stopped and requeued. Admins only.
func (s *Server) DrainNode(c Caller, name, reason string, requeue bool) (api.Node, error) {
	if !s.isAdmin(c.UID) {
		return api.Node{}, forbidden("only admins may drain nodes")
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 1024 {
		return api.Node{}, refusal(ErrInvalid, "a drain needs a reason of 1..1024 characters (--reason)")
	}
	if err := s.setDrain(name, true, reason, requeue); err != nil {
		return api.Node{}, err
	}
	return s.apiNode(name)
}

// ResumeNode lets jobs start on drained node name again. Admins only.
func (s *Server) ResumeNode(c Caller, name string) (api.Node, error) {
	if !s.isAdmin(c.UID) {
		return api.Node{}, forbidden("only admins may resume nodes")
	}
	if err := s.setDrain(name, false, "", false); err != nil {
		return api.Node{}, err
	}
	return s.apiNode(name)
}

// apiJob is job id as the API shows it now.
func (s *Server) apiJob(id uint64) api.Job {
	aj, _ := s.jobView(id) // live, or archived since it ended
	return aj
}

// apiNode is node name as the API shows it now.
func (s *Server) apiNode(name string) (api.Node, error) {
	for _, n := range s.apiNodes() {
		if n.Name == name {
			return n, nil
		}
	}
	return api.Node{}, notFound("no node named %q: see `hpcsub nodes`", name)
}
