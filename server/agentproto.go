package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/hpc-sched/hpc/api"
)

// AgentIdentity is who an agent proved to be: the node name of its
// certificate (or, in process, the name `hpcd dev` gave it) and the
// certificate's serial.
type AgentIdentity struct {
	Node   string
	Serial string
}

// AgentRegister opens (or reopens) the session of a node's agent and
// reconciles its jobs: outcomes it kept while the server was away are
// stored first; then the jobs the server has RUNNING there and the agent
// holds are adopted, the ones the agent holds but the server ended or gave
// to another node are returned to be killed, and the ones the agent lost
// end NODE_FAIL (requeued when they may be).
func (s *Server) AgentRegister(ctx context.Context, id AgentIdentity, req api.RegisterRequest) (api.RegisterResponse, error) {
	if err := checkRegister(id, req); err != nil {
		return api.RegisterResponse{}, err
	}
	name := req.Node.Name
	now := time.Now()
	sess := newAgentSession(name, id.Serial)
	_, err := s.updateNode(name, func(n *node) error {
		if n.CertSerial != "" && id.Serial != "" && n.CertSerial != id.Serial {
			return refuse(http.StatusConflict, "node name %q belongs to another agent's certificate: `hpcsub node remove %s` first, or choose another --name", name, name)
		}
		n.Reg = req.Node
		n.LastContact = now
		n.AgentVersion = req.AgentVersion
		if id.Serial != "" {
			n.CertSerial = id.Serial
		}
		n.GPUUnhealthy = unhealthyGPUs(req.GPUHealth)
		n.DownReason = ""
		return nil
	})
	if err != nil {
		return api.RegisterResponse{}, err
	}
	// Committed: now the session is installed (derived state, in place).
	s.mu.Lock()
	n := s.nodes[name]
	old := n.session
	n.agent, n.session, n.lastSync, n.downHandled = true, sess, now, false
	s.agents[name] = sess
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	if s.registerInstalled != nil {
		s.registerInstalled(name)
	}
	for _, o := range req.Ended {
		s.agentOutcome(sess, o)
	}

	// Commands the old session never had acknowledged: a launch that did
	// not reach the agent is sent again rather than taken for lost.
	unsent := map[uint64][]api.Command{}
	if old != nil {
		for _, c := range old.unacked() {
			unsent[c.JobID] = append(unsent[c.JobID], c)
		}
	}
	held := map[uint64]bool{}
	for _, jid := range req.Held {
		held[jid] = true
	}
	var resp api.RegisterResponse
	var lost []lostRun
	var resend []api.Command
	stale := 0
	// One critical section (s.mu) decides each job's fate and queues its
	// resends: a job's run is identified by its Attempt, and while s.mu is
	// held no launch of the current attempt can be handed over unseen (the
	// launch goroutine clears s.launching under s.mu after its push).
	s.mu.Lock()
	for jid, j := range s.jobs {
		if j.State != api.StateRunning || !j.onNode(name) {
			continue
		}
		switch {
		case held[jid]:
			resp.Adopt = append(resp.Adopt, jid)
			if j.CancelRequested {
				resend = append(resend, api.Command{Kind: api.CommandCancel, JobID: jid, Reason: "cancelled by user"})
			} else {
				for _, c := range unsent[jid] {
					if c.Kind == api.CommandCancel || c.Kind == api.CommandSignal {
						resend = append(resend, c)
					}
				}
			}
		case s.launching[jid]:
			// Committed RUNNING, launch not yet handed over: it reaches
			// this session, or fails and is requeued, on its own. Taking
			// it for lost as well would run it twice.
		case sess.hasLaunch(jid, j.Attempt):
			// Handed to this very session (scheduled after it was
			// installed): it is on its way to the agent.
		case hasLaunch(unsent[jid], j.Attempt):
			for _, c := range unsent[jid] {
				if c.Kind == api.CommandLaunch && (c.Launch == nil || c.Launch.Attempt != j.Attempt) {
					stale++
					continue
				}
				resend = append(resend, c)
			}
		default:
			// No launch of this attempt can be delivered any more: it is
			// in no queue and none is in flight. Dropped from this
			// session's queue all the same, in this critical section, so
			// the requeue below can never race a delivery.
			stale += sess.dropLaunches(jid)
			lost = append(lost, lostRun{jid, j.Attempt})
		}
	}
	for jid := range held {
		if j, ok := s.jobs[jid]; !ok || j.State != api.StateRunning || !j.onNode(name) {
			resp.Kill = append(resp.Kill, jid)
		}
	}
	sort.SliceStable(resend, func(i, k int) bool { return resend[i].ID < resend[k].ID })
	for _, c := range resend {
		c.ID = 0
		if err := sess.push(c); err != nil {
			break
		}
	}
	s.mu.Unlock()
	if stale > 0 {
		s.log.Warn("dropping launches of earlier runs", "node", name, "count", stale)
	}
	sortIDs(resp.Adopt)
	sortIDs(resp.Kill)
	sort.Slice(lost, func(i, k int) bool { return lost[i].id < lost[k].id })
	// The agent holds every job it was given until the server releases it
	// (on disk, across its own restarts): one it has no trace of never
	// reached it, so nothing of it ran and it goes back to the queue
	// without using a restart. The outcome names the attempt: if the job
	// moved on meanwhile (cancelled, restarted), it changes nothing.
	for _, l := range lost {
		s.Report(api.Outcome{JobID: l.id, Node: name, State: api.StateFailed, ExitCode: -1, NeverStarted: true, HostFailure: true,
			Attempt: l.attempt,
			Reason:  "its launch never reached " + name + " (the server or the agent restarted in between)", End: now})
	}
	resp.Session = sess.id
	resp.Heartbeat = s.cfg.Heartbeat
	resp.DownTimeout = s.cfg.DownTimeout
	s.log.Info("agent registered", "node", name, "version", req.AgentVersion, "cpus", len(req.Node.CPUIDs),
		"gpus", len(req.Node.GPUs), "adopted", len(resp.Adopt), "killed", len(resp.Kill), "lost", len(lost),
		"ended_meanwhile", len(req.Ended))
	s.Kick()
	return resp, nil
}

// lostRun is a job's run (attempt) that a registering agent never got.
type lostRun struct{ id, attempt uint64 }

// hasLaunch reports whether cs holds a launch of the given attempt.
func hasLaunch(cs []api.Command, attempt uint64) bool {
	for _, c := range cs {
		if c.Kind == api.CommandLaunch && c.Launch != nil && c.Launch.Attempt == attempt {
			return true
		}
	}
	return false
}

func sortIDs(ids []uint64) { sort.Slice(ids, func(i, k int) bool { return ids[i] < ids[k] }) }

// AgentSync is one heartbeat: it stores the outcomes it carries, drops the
// acknowledged commands and answers with the rest, waiting up to req.Wait
// for some when there are none.
func (s *Server) AgentSync(ctx context.Context, id AgentIdentity, req api.SyncRequest) (api.SyncResponse, error) {
	if err := checkSync(req); err != nil {
		return api.SyncResponse{}, err
	}
	s.mu.Lock()
	n, ok := s.nodes[id.Node]
	var sess *agentSession
	if ok {
		sess = n.session
	}
	if sess == nil || sess.id != req.Session {
		s.mu.Unlock()
		return api.SyncResponse{}, refuse(http.StatusConflict, "%s: no such session for node %q", api.ErrSessionLost, id.Node)
	}
	s.mu.Unlock()
	if !sess.advance(req.Seq) {
		s.log.Warn("refusing a replayed or stale sync", "node", id.Node, "seq", req.Seq)
		return api.SyncResponse{}, refuse(http.StatusConflict, "%s: sync %d is replayed or stale", api.ErrSessionLost, req.Seq)
	}
	now := time.Now()
	s.mu.Lock()
	if n := s.nodes[id.Node]; n != nil && n.session == sess {
		n.lastSync = now // derived, in place: heartbeats are not stored
	}
	s.mu.Unlock()
	sess.ack(req.Ack)
	s.agentOutcomes(sess, req.Outcomes) // outcomes.go
	if req.GPUHealth != nil {
		s.setGPUHealth(id.Node, req.GPUHealth)
	}
	cmds, err := sess.await(ctx, req.Wait)
	if err != nil {
		return api.SyncResponse{}, refuse(http.StatusConflict, "%s: %v", api.ErrSessionLost, err)
	}
	if cmds == nil {
		cmds = []api.Command{}
	}
	return api.SyncResponse{Commands: cmds}, nil
}

// agentOutcome takes one outcome from a node's agent. An outcome of a job
// the node was never given, of a job that runs on another node now, or of
// an earlier run changes nothing: it is logged, and the agent is told to
// forget the job.
func (s *Server) agentOutcome(sess *agentSession, o api.Outcome) {
	if o.Node != "" && o.Node != sess.node {
		s.log.Warn("ignoring an outcome that names another node", "node", sess.node, "claimed", o.Node, "job", o.JobID)
		return
	}
	o.Node = sess.node
	s.mu.Lock()
	j, ok := s.jobs[o.JobID]
	var why string
	switch {
	case !ok:
		why = "the job does not exist"
	case j.State == api.StateRunning && !j.onNode(sess.node):
		why = "the job runs on " + strings.Join(j.nodeNames(), ",")
	case j.State == api.StateRunning && o.Attempt != 0 && j.Attempt != 0 && o.Attempt != j.Attempt:
		s.mu.Unlock()
		s.log.Warn("ignoring the outcome of an earlier run", "node", sess.node, "job", o.JobID, "attempt", o.Attempt, "current", j.Attempt)
		return
	}
	s.mu.Unlock()
	if why != "" {
		s.log.Warn("ignoring an outcome of a job not given to this node", "node", sess.node, "job", o.JobID, "why", why)
		if err := sess.Release(o.JobID); err != nil {
			s.log.Debug("release after ignored outcome", "err", err)
		}
		return
	}
	s.Report(o)
}

// checkHeartbeats marks DOWN every node whose agent has not synced for
// DownTimeout, and ends the jobs of nodes that never came back after a
// server restart.
func (s *Server) checkHeartbeats(now time.Time) {
	d := s.cfg.DownTimeout
	s.mu.Lock()
	var down []string
	for name, n := range s.nodes {
		switch {
		case n.session != nil && now.Sub(n.contact()) > d:
			down = append(down, name)
		case !n.agent && !n.downHandled && now.Sub(s.started) > d && now.Sub(n.contact()) > d:
			down = append(down, name)
		}
	}
	s.mu.Unlock()
	sort.Strings(down)
	for _, name := range down {
		s.markDown(name, fmt.Sprintf("no heartbeat for %s", d), now)
	}
}

// markDown ends a node's session and its jobs: NODE_FAIL, or back to the
// queue when they may be requeued (a restart used). The other nodes of a
// multi-node job are told to stop their parts.
func (s *Server) markDown(name, reason string, now time.Time) {
	s.mu.Lock()
	n, ok := s.nodes[name]
	if !ok || n.downHandled {
		s.mu.Unlock()
		return
	}
	sess := n.session
	n.session, n.agent, n.downHandled = nil, false, true // derived, in place
	if sess != nil {
		delete(s.agents, name)
	}
	type stop struct {
		id     uint64
		others []Agent
	}
	var stops []stop
	for jid, j := range s.jobs {
		if j.State != api.StateRunning || !j.onNode(name) {
			continue
		}
		st := stop{id: jid}
		for _, a := range j.Alloc {
			if a.Node != name && s.agents[a.Node] != nil {
				st.others = append(st.others, s.agents[a.Node])
			}
		}
		stops = append(stops, st)
	}
	s.mu.Unlock()
	if sess != nil {
		sess.close()
		s.log.Warn("node DOWN", "node", name, "reason", reason, "jobs", len(stops))
	}
	if _, err := s.updateNode(name, func(n *node) error {
		n.DownReason = reason
		return nil
	}); err != nil {
		s.log.Error("store DOWN node", "node", name, "err", err)
	}
	sort.Slice(stops, func(i, k int) bool { return stops[i].id < stops[k].id })
	ids := make([]uint64, len(stops))
	for i, st := range stops {
		ids[i] = st.id
	}
	s.endLostJobs(ids, "node "+name+" is DOWN: "+reason, now)
	for _, st := range stops {
		for _, a := range st.others {
			if err := a.Cancel(st.id, "node "+name+" of the job is DOWN"); err != nil {
				s.log.Warn("stop the rest of a job on a DOWN node", "job", st.id, "err", err)
			}
		}
	}
	s.Kick()
}

// setGPUHealth records the agent's verdict on its GPUs; a change is stored
// and the placer sees it on its next pass.
func (s *Server) setGPUHealth(name string, health []api.GPUHealth) {
	bad := unhealthyGPUs(health)
	s.mu.Lock()
	n, ok := s.nodes[name]
	same := ok && sameReasons(n.GPUUnhealthy, bad)
	s.mu.Unlock()
	if !ok || same {
		return
	}
	if _, err := s.updateNode(name, func(n *node) error {
		n.GPUUnhealthy = bad
		return nil
	}); err != nil {
		s.log.Error("store GPU health", "node", name, "err", err)
		return
	}
	s.log.Warn("GPU health changed", "node", name, "unhealthy", bad)
	s.Kick()
}

func unhealthyGPUs(health []api.GPUHealth) map[int]string {
	var bad map[int]string
	for _, h := range health {
		if !h.Healthy {
			if bad == nil {
				bad = map[int]string{}
			}
			bad[h.Index] = h.Reason
		}
	}
	return bad
}

func sameReasons(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkRegister bounds everything a registration says before any of it
// is believed.
func checkRegister(id AgentIdentity, req api.RegisterRequest) error {
	bad := func(format string, args ...any) error {
		return refuse(http.StatusBadRequest, "registration: "+format, args...)
	}
	if req.Protocol != api.ProtocolVersion {
		return bad("agent protocol %d, this server speaks %d: run the same hpcd version on server and agents", req.Protocol, api.ProtocolVersion)
	}
	r := req.Node
	if err := api.CheckNodeName(r.Name); err != nil {
		return bad("%v", err)
	}
	if id.Node != "" && id.Node != r.Name {
		return refuse(http.StatusForbidden, "registration: this agent's certificate is for node %q, not %q", id.Node, r.Name)
	}
	if len(req.AgentVersion) > 64 {
		return bad("agent version over 64 bytes")
	}
	if len(r.CPUIDs) == 0 || len(r.CPUIDs) > api.MaxNodeCPUs {
		return bad("%d CPUs: a node has 1..%d", len(r.CPUIDs), api.MaxNodeCPUs)
	}
	seen := map[int]bool{}
	for _, c := range r.CPUIDs {
		if c < 0 || c >= 1<<16 || seen[c] {
			return bad("CPU id %d is negative, too large or repeated", c)
		}
		seen[c] = true
	}
	if r.Memory <= 0 || r.Memory > 1<<50 {
		return bad("memory %d bytes is out of range", r.Memory)
	}
	if len(r.GPUs) > api.MaxNodeGPUs {
		return bad("%d GPUs: at most %d", len(r.GPUs), api.MaxNodeGPUs)
	}
	gseen := map[int]bool{}
	for _, g := range r.GPUs {
		if g.Index < 0 || g.Index >= 1024 || gseen[g.Index] {
			return bad("GPU index %d is negative, too large or repeated", g.Index)
		}
		gseen[g.Index] = true
		if g.Memory < 0 || g.Memory > 1<<44 || len(g.Model) > 256 || len(g.UUID) > 256 || len(g.PCIBusID) > 64 {
			return bad("GPU %d: memory, model or UUID out of range", g.Index)
		}
	}
	if r.Links != nil {
		if len(r.Links) != len(r.GPUs) {
			return bad("link matrix has %d rows for %d GPUs", len(r.Links), len(r.GPUs))
		}
		for i, row := range r.Links {
			if len(row) != len(r.GPUs) {
				return bad("link matrix row %d has %d entries for %d GPUs", i, len(row), len(r.GPUs))
			}
		}
	}
	if len(r.Features) > api.MaxNodeFeatures {
		return bad("%d features: at most %d", len(r.Features), api.MaxNodeFeatures)
	}
	for _, f := range r.Features {
		if f == "" || len(f) > api.MaxFeatureLen || strings.IndexFunc(f, func(c rune) bool { return !unicode.IsPrint(c) || unicode.IsSpace(c) }) >= 0 {
			return bad("feature %q: 1..%d printable characters without spaces", f, api.MaxFeatureLen)
		}
	}
	if len(r.NUMA) > 1024 {
		return bad("%d NUMA nodes: at most 1024", len(r.NUMA))
	}
	for _, n := range r.NUMA {
		if n.ID < 0 || n.ID >= 1024 || len(n.CPUs) > api.MaxNodeCPUs {
			return bad("NUMA node %d out of range", n.ID)
		}
	}
	if len(r.Isolation) > 32 {
		return bad("isolation name over 32 bytes")
	}
	if len(req.Held) > api.MaxJobsPerNode || len(req.Ended) > api.MaxOutcomesPerSync {
		return bad("too many held jobs or outcomes")
	}
	for _, o := range req.Ended {
		if err := checkOutcome(o); err != nil {
			return err
		}
	}
	return checkHealth(req.GPUHealth)
}

func checkSync(req api.SyncRequest) error {
	if req.Session == "" || len(req.Session) > 64 {
		return refuse(http.StatusBadRequest, "sync: missing or oversized session")
	}
	if req.Wait < 0 || req.Wait > api.MaxSyncWait {
		return refuse(http.StatusBadRequest, "sync: wait %s is outside 0..%s", req.Wait, api.MaxSyncWait)
	}
	if len(req.Outcomes) > api.MaxOutcomesPerSync || len(req.Running) > api.MaxJobsPerNode {
		return refuse(http.StatusBadRequest, "sync: too many outcomes or running jobs")
	}
	for _, o := range req.Outcomes {
		if err := checkOutcome(o); err != nil {
			return err
		}
	}
	return checkHealth(req.GPUHealth)
}

func checkOutcome(o api.Outcome) error {
	if o.JobID == 0 {
		return refuse(http.StatusBadRequest, "outcome without a job id")
	}
	if !api.ValidOutcomeState(o.State) {
		return refuse(http.StatusBadRequest, "outcome of job %d: state %q is not one an agent may report", o.JobID, o.State)
	}
	if len(o.Reason) > 4096 || len(o.Signal) > 32 || len(o.Node) > api.MaxNodeNameLen {
		return refuse(http.StatusBadRequest, "outcome of job %d: reason, signal or node name too long", o.JobID)
	}
	if o.ExitCode < -1 || o.ExitCode > 255 {
		return refuse(http.StatusBadRequest, "outcome of job %d: exit code %d outside -1..255", o.JobID, o.ExitCode)
	}
	u := o.Usage
	if u.ElapsedSeconds < 0 || u.CPUSeconds < 0 || u.PeakMemory < 0 || u.GPUSeconds < 0 {
		return refuse(http.StatusBadRequest, "outcome of job %d: negative usage", o.JobID)
	}
	if err := api.CheckGPUUsage(o.GPUUsage); err != nil {
		return refuse(http.StatusBadRequest, "outcome of job %d: %v", o.JobID, err)
	}
	return nil
}

func checkHealth(h []api.GPUHealth) error {
	if len(h) > api.MaxNodeGPUs {
		return refuse(http.StatusBadRequest, "GPU health of %d GPUs: at most %d", len(h), api.MaxNodeGPUs)
	}
	for _, g := range h {
		if g.Index < 0 || g.Index >= 1024 || len(g.Reason) > 1024 {
			return refuse(http.StatusBadRequest, "GPU health: index %d or reason out of range", g.Index)
		}
	}
	return nil
}

// InProcess is the agent protocol's transport for an agent inside this
// process (`hpcd dev`): the same calls as over HTTPS, without the network.
type InProcess struct {
	s    *Server
	node string
}

// InProcess returns the transport of the in-process agent of node name.
func (s *Server) InProcess(node string) *InProcess { return &InProcess{s: s, node: node} }

// Register implements the agent's transport.
func (t *InProcess) Register(ctx context.Context, req api.RegisterRequest) (api.RegisterResponse, error) {
	resp, err := t.s.AgentRegister(ctx, AgentIdentity{Node: t.node}, req)
	return resp, protocolError(err)
}

// Sync implements the agent's transport.
func (t *InProcess) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error) {
	resp, err := t.s.AgentSync(ctx, AgentIdentity{Node: t.node}, req)
	return resp, protocolError(err)
}

// protocolError maps a refusal onto the errors agents act on.
func protocolError(err error) error {
	if err == nil {
		return nil
	}
	switch status := statusOf(err); {
	case status == http.StatusConflict && strings.HasPrefix(err.Error(), api.ErrSessionLost.Error()):
		return fmt.Errorf("%w (%v)", api.ErrSessionLost, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusConflict:
		return fmt.Errorf("%w: %v", api.ErrAgentRefused, err)
	case status >= 400 && status < 500:
		return fmt.Errorf("%w: %v", api.ErrAgentRefused, err)
	}
	return err
}
