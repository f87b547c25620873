package server

import (
	"fmt"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Host failures are the node's, never the job's. A launch that fails on
// the node (disk full, no descriptors, cgroup or shim trouble) or a run
// whose supervisor died comes back as an outcome with HostFailure set: the
// job goes back to the queue without using a restart (or ends NODE_FAIL
// when it does not allow requeueing), the cause is logged, and after
// Config.DrainAfterHostFailures such failures in a row the node is
// drained with the reason, as Slurm drains a node whose prolog fails.
// Otherwise one sick node would turn the whole queue into failed jobs at
// scheduler speed.

// DefaultDrainAfterHostFailures is how many host failures in a row drain
// a node when Config.DrainAfterHostFailures is 0.
const DefaultDrainAfterHostFailures = 3

func (s *Server) drainAfter() int {
	switch n := s.cfg.DrainAfterHostFailures; {
	case n == 0:
		return DefaultDrainAfterHostFailures
	case n < 0:
		return 0 // never
	default:
		return n
	}
}

// launchFailed turns an agent's refusal to launch a job's part into a
// host-failure outcome.
func (s *Server) launchFailed(id uint64, node string, err error) {
	s.Report(api.Outcome{JobID: id, Node: node, State: api.StateNodeFail, ExitCode: 1, HostFailure: true,
		Reason: fmt.Sprintf("could not start on %s: %v", node, err), End: time.Now()})
}

// hostWorked notes that node launched a job: its run of failures ends.
func (s *Server) hostWorked(node string) {
	s.mu.Lock()
	delete(s.hostFailures, node)
	s.mu.Unlock()
}

// hostFailed counts a host failure of node and drains the node once
// there were DrainAfterHostFailures of them in a row.
func (s *Server) hostFailed(node string, job uint64, cause string) {
	s.mu.Lock()
	s.hostFailures[node]++
	n := s.hostFailures[node]
	limit := s.drainAfter()
	nd, ok := s.nodes[node]
	drain := limit > 0 && n >= limit && ok && !nd.Drain
	if drain {
		// Only one of the failures that land together drains the node.
		delete(s.hostFailures, node)
	}
	s.mu.Unlock()
	s.log.Warn("host failure: the job is not to blame", "node", node, "job", job, "cause", cause, "in_a_row", n)
	if !drain {
		return
	}
	reason := fmt.Sprintf("%d host failures in a row, the last: %s", n, cause)
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	if err := s.setDrain(node, true, reason, false); err != nil {
		s.log.Error("drain a failing node", "node", node, "err", err)
		return
	}
	s.log.Error("node drained after repeated host failures", "node", node, "failures", n, "reason", reason)
}

// applyHostFailure ends the run of j (a copy being changed) that its node
// failed: back to the queue without using a restart, or NODE_FAIL when
// the job may not be requeued. The exit code is the node's, not the
// job's, so none is recorded.
func applyHostFailure(j *job, o api.Outcome) {
	reason := "host failure on " + o.Node + ": " + o.Reason
	if j.Requeue {
		j.History = append(j.History, api.Transition{Time: o.End, State: api.StateNodeFail, Reason: reason})
		j.requeue(reason, o.End, false)
		return
	}
	j.ExitCode = nil
	j.Signal = ""
	j.to(api.StateNodeFail, reason+" (the job does not allow requeue)", o.End)
}

// keepUnstored remembers an outcome whose commit failed, to be reported
// again (retryUnstored) until it is stored: the agent keeps it meanwhile
// and the job shows RUNNING, never a made-up end.
func (s *Server) keepUnstored(o api.Outcome) {
	s.mu.Lock()
	s.unstored[fmt.Sprintf("%d/%s", o.JobID, o.Node)] = o
	s.mu.Unlock()
}

// retryUnstored reports again every outcome that could not be stored.
// The scheduling loop calls it on every tick.
func (s *Server) retryUnstored() {
	s.mu.Lock()
	if len(s.unstored) == 0 {
		s.mu.Unlock()
		return
	}
	pending := make([]api.Outcome, 0, len(s.unstored))
	for k, o := range s.unstored {
		pending = append(pending, o)
		delete(s.unstored, k)
	}
	s.mu.Unlock()
	for _, o := range pending {
		s.Report(o) // puts it back when the commit fails again
	}
}
