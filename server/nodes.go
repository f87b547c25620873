package server

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/checkpoint"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
)

// node is the server's record of one machine; the inventory part is
// replaced on every registration, the drain part is the admins' and
// survives restarts.
type node struct {
	Reg          api.NodeRegistration `json:"registration"`
	Drain        bool                 `json:"drain,omitempty"`
	DrainReason  string               `json:"drain_reason,omitempty"`
	DrainRequeue bool                 `json:"drain_requeue,omitempty"`
	LastContact  time.Time            `json:"last_contact"`
	AgentVersion string               `json:"agent_version,omitempty"`
	// CertSerial is the serial of the certificate the node's agent joined
	// with; another certificate may not claim the name.
	CertSerial string `json:"cert_serial,omitempty"`
	// GPUDrain holds GPUs an admin took out of service, with the reason;
	// GPUUnhealthy those the agent found failing (NVML), with its reason.
	GPUDrain     map[int]string `json:"gpu_drain,omitempty"`
	GPUUnhealthy map[int]string `json:"gpu_unhealthy,omitempty"`
	DownReason   string         `json:"down_reason,omitempty"`

	agent    bool          // an agent is attached now
	session  *agentSession // the agent's protocol session, if it uses one
	lastSync time.Time     // the agent's last heartbeat (LastContact is stored at registration)
	// downHandled: the jobs of this agentless node were already ended.
	downHandled bool
}

// contact is when the node's agent was last heard from.
func (n *node) contact() time.Time {
	if n.lastSync.After(n.LastContact) {
		return n.lastSync
	}
	return n.LastContact
}

// Reconciler is implemented by agents that can tell, after a restart of
// either side, which of the server's running jobs still run on the node.
type Reconciler interface {
	// Reconcile adopts the jobs of running that the agent still knows,
	// kills and forgets every other job it has, and returns the jobs of
	// running it has no trace of.
	Reconcile(running []uint64) (lost []uint64, err error)
}

// AttachAgent registers a node and its agent, then reconciles the jobs
// the store says run there: adopted when the agent still has them,
// otherwise ended (or requeued when the job allows it) with a clear reason.
func (s *Server) AttachAgent(reg api.NodeRegistration, a Agent) error {
	now := time.Now()
	_, err := s.updateNode(reg.Name, func(n *node) error {
		n.Reg = reg
		n.LastContact = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("register node %s: %w", reg.Name, err)
	}
	s.mu.Lock()
	s.nodes[reg.Name].agent = true
	s.agents[reg.Name] = a
	var running, cancels []uint64
	for id, j := range s.jobs {
		if active(j.State) && j.onNode(reg.Name) {
			running = append(running, id)
			if j.CancelRequested {
				cancels = append(cancels, id)
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(running, func(i, k int) bool { return running[i] < running[k] })
	var lost []uint64
	if r, ok := a.(Reconciler); ok {
		lost, err = r.Reconcile(running)
		if err != nil {
			return fmt.Errorf("reconcile node %s: %w", reg.Name, err)
		}
	}
	for _, id := range lost {
		s.endLost(id, "no process of the job was found on "+reg.Name+" after a restart", now)
	}
	for _, id := range cancels {
		if err := a.Cancel(id, "cancelled by user"); err != nil {
			s.log.Warn("re-sending cancel after restart", "job", id, "err", err)
		}
	}
	s.log.Info("node attached", "node", reg.Name, "cpus", len(reg.CPUIDs), "gpus", len(reg.GPUs),
		"isolation", reg.Isolation, "adopted", len(running)-len(lost), "lost", len(lost))
	s.Kick()
	return nil
}

// endLost ends a job whose processes are gone without an outcome: the
// restart rule requeues it when the job may restart and restarts remain,
// else it is NODE_FAIL.
func (s *Server) endLost(id uint64, reason string, now time.Time) {
	s.endLostJobs([]uint64{id}, reason, now)
}

// endLostJobs is endLost for many jobs in one commit: a DOWN node's jobs
// are requeued together, not one fsync after another.
func (s *Server) endLostJobs(ids []uint64, reason string, now time.Time) {
	_, err := s.updateJobs(ids, func(j *job) error {
		if api.Terminal(j.State) {
			return skipJob
		}
		run := j.lostRun(now)
		if j.CancelRequested {
			j.to(api.StateCancelled, "cancelled by user; "+reason, now)
			j.endRun(run, run.Start.IsZero())
			return nil
		}
		j.StopCause = string(checkpoint.CauseNodeFail)
		n := len(j.History)
		j.finishRun(api.Outcome{State: api.StateNodeFail, Reason: reason, End: now}, &run)
		if j.State == api.StatePending {
			// Requeued: the history says the node failed, then REQUEUED.
			j.History = slices.Insert(j.History, n, api.Transition{Time: now, State: api.StateNodeFail, Reason: reason})
		}
		j.endRun(run, run.Start.IsZero())
		return nil
	})
	if err != nil {
		s.log.Error("end lost jobs", "jobs", ids, "err", err)
	}
}

func (j *job) onNode(name string) bool {
	for _, a := range j.Alloc {
		if a.Node == name {
			return true
		}
	}
	return false
}

// requeue moves a job that the system stopped back to PENDING through
// REQUEUED, both transitions stored. A run that started counts against the
// job's restarts; one cut short before any of its code ran does not.
func (j *job) requeue(reason string, now time.Time, started bool) {
	j.History = append(j.History, api.Transition{Time: now, State: api.StateRequeued, Reason: reason})
	j.State = api.StatePending
	j.History = append(j.History, api.Transition{Time: now, State: api.StatePending, Reason: "requeued"})
	if started {
		j.Restarts++
	}
	j.Alloc = nil
	j.Parts = nil
	j.RequeueRequested = false
	j.StopCause, j.StopDeadline = "", nil
	j.Checkpoints, j.LastCheckpoint, j.CheckpointError = 0, nil, ""
	j.Start = nil
	j.End = nil
	j.ExitCode = nil
	j.Signal = ""
	j.Reason = ""
}

// placementNode converts one node of the registry into the placer's
// view (placementNodesLocked, nodeview.go, keeps them between passes).
func placementNode(name string, n *node) placement.Node {
	pn := placement.Node{
		Name:     name,
		State:    placement.NodeUp,
		Features: nodeFeatures(n.Reg),
		CPUs:     len(n.Reg.CPUIDs),
		CPUIDs:   n.Reg.CPUIDs,
		Memory:   n.Reg.Memory,
		Links:    n.Reg.Links,
	}
	// A GPU out of service (drained by an admin, or failing) is not
	// offered at all; the link matrix keeps only the rows and columns
	// of the GPUs that are.
	var keep []int
	for i, g := range n.Reg.GPUs {
		if n.gpuOutOfService(g.Index) != "" {
			continue
		}
		keep = append(keep, i)
		pn.GPUs = append(pn.GPUs, placement.GPU{ID: g.Index, Model: g.Model, Memory: g.Memory})
	}
	if len(keep) < len(n.Reg.GPUs) && n.Reg.Links != nil {
		pn.Links = make([][]resources.Link, len(keep))
		for a, i := range keep {
			pn.Links[a] = make([]resources.Link, len(keep))
			for b, k := range keep {
				pn.Links[a][b] = n.Reg.Links[i][k]
			}
		}
	}
	switch {
	case !n.agent:
		pn.State = placement.NodeDown
	case n.Drain:
		pn.State = placement.NodeDraining
	}
	return pn
}

// apiNodes lists nodes with their state derived from allocations.
func (s *Server) apiNodes() []api.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	type use struct {
		cpus int
		mem  int64
		gpus map[int]bool
		jobs []uint64
	}
	used := map[string]*use{}
	for _, j := range s.jobs {
		if !active(j.State) {
			continue
		}
		for _, a := range j.Alloc {
			u := used[a.Node]
			if u == nil {
				u = &use{gpus: map[int]bool{}}
				used[a.Node] = u
			}
			u.cpus += len(a.CPUs)
			u.mem += a.Memory
			for _, g := range a.GPUs {
				u.gpus[g] = true
			}
			u.jobs = append(u.jobs, j.ID)
		}
	}
	out := make([]api.Node, 0, len(s.nodes))
	for name, n := range s.nodes {
		u := used[name]
		if u == nil {
			u = &use{gpus: map[int]bool{}}
		}
		sort.Slice(u.jobs, func(i, k int) bool { return u.jobs[i] < u.jobs[k] })
		an := api.Node{
			Name:        name,
			CPUs:        len(n.Reg.CPUIDs),
			CPUsUsed:    u.cpus,
			Memory:      n.Reg.Memory,
			MemoryUsed:  u.mem,
			Features:    n.Reg.Features,
			Isolation:   n.Reg.Isolation,
			Jobs:        u.jobs,
			LastContact: n.contact(),
		}
		an.AgentVersion, an.NUMA = n.AgentVersion, n.Reg.NUMA
		an.Checkpoint = nodeCheckpointModes(n.Reg)
		for _, g := range n.Reg.GPUs {
			g.Used = u.gpus[g.Index]
			g.OutOfService = n.gpuOutOfService(g.Index)
			an.GPUs = append(an.GPUs, g)
		}
		switch {
		case !n.agent:
			an.State, an.Reason = api.NodeDown, n.DownReason
			if n.Drain {
				an.Reason = strings.TrimPrefix(n.DownReason+"; drained: "+n.DrainReason, "; ")
			}
		case n.Drain && len(u.jobs) > 0:
			an.State, an.Reason = api.NodeDraining, n.DrainReason
		case n.Drain:
			an.State, an.Reason = api.NodeDrained, n.DrainReason
		case len(u.jobs) == 0:
			an.State = api.NodeIdle
		case u.cpus >= an.CPUs || (len(an.GPUs) > 0 && len(u.gpus) >= len(an.GPUs)):
			an.State = api.NodeAllocated
		default:
			an.State = api.NodeMixed
		}
		out = append(out, an)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

// setDrain drains or resumes a node durably.
func (s *Server) setDrain(name string, drain bool, reason string, requeue bool) error {
	err := s.updateKnownNode(name, func(n *node) error {
		n.Drain, n.DrainReason, n.DrainRequeue = drain, reason, requeue
		if !drain {
			n.DrainReason, n.DrainRequeue = "", false
		}
		return nil
	})
	if err != nil {
		return err
	}
	if drain && requeue {
		if err := s.requeueNode(name); err != nil {
			return fmt.Errorf("node %s is drained, but its jobs were not requeued: %w", name, err)
		}
	}
	s.Kick()
	return nil
}

// requeueNode stops the node's jobs that may be restarted: checkpointing
// jobs are warned first and stopped when their warn time is over, the
// others at once; either way they are requeued (stopJobs).
func (s *Server) requeueNode(name string) error {
	s.mu.Lock()
	var ids []uint64
	for id, j := range s.jobs {
		if active(j.State) && j.onNode(name) && j.policy().Restartable() {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	return s.stopJobs(ids, checkpoint.CauseDrain, time.Now())
}

// EndJobsOnNodesWithoutAgent ends the RUNNING jobs of every node that has
// no agent now. `hpcd dev` calls it once its only agent is attached: a
// node of another name (the host was renamed, or --node-name changed)
// will never come back to report them.
func (s *Server) EndJobsOnNodesWithoutAgent(reason string) {
	s.mu.Lock()
	var ids []uint64
	for id, j := range s.jobs {
		if !active(j.State) {
			continue
		}
		for _, a := range j.Alloc {
			if _, ok := s.agents[a.Node]; !ok {
				ids = append(ids, id)
				break
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(ids, func(i, k int) bool { return ids[i] < ids[k] })
	now := time.Now()
	for _, id := range ids {
		s.endLost(id, reason, now)
	}
}

// gpuOutOfService says why GPU idx is not given out ("" when it is): an
// admin's drain first, else the agent's health verdict.
func (n *node) gpuOutOfService(idx int) string {
	if r, ok := n.GPUDrain[idx]; ok {
		return "drained: " + r
	}
	if r, ok := n.GPUUnhealthy[idx]; ok {
		return "unhealthy: " + r
	}
	return ""
}
