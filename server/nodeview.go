package server

import "github.com/hpc-sched/hpc/placement"

// nodeView is one node as the placer sees it, kept between scheduling
// passes and submits. Converting 1,000 nodes (their GPUs, links and
// features) on every pass and every submit, and hashing them for the
// feasibility memo on every submit, was a sixth of the server's CPU at
// 1,000 nodes; nodes change rarely. A view is rebuilt when its node's
// record was replaced — updateNode installs a new record for every
// stored change (registration, drain, GPU drain or health) — or when the
// node's agent came or went (derived, set in place).
type nodeView struct {
	rec   *node
	agent bool
	pn    placement.Node // never changed once built: passes share it
	hash  uint64         // the feasibility memo's hash of pn
}

// nodeViewLocked is node name's view, rebuilt only when stale; s.mu held.
func (s *Server) nodeViewLocked(name string, n *node) nodeView {
	if v, ok := s.nodeViews[name]; ok && v.rec == n && v.agent == n.agent {
		return v
	}
	if s.nodeViews == nil {
		s.nodeViews = map[string]nodeView{}
	}
	v := nodeView{rec: n, agent: n.agent, pn: placementNode(name, n)}
	v.hash = s.feasible.hashNode(&v.pn)
	s.nodeViews[name] = v
	return v
}

// pruneNodeViewsLocked forgets the views of removed nodes; s.mu held.
func (s *Server) pruneNodeViewsLocked() {
	if len(s.nodeViews) <= len(s.nodes) {
		return
	}
	for name := range s.nodeViews {
		if _, ok := s.nodes[name]; !ok {
			delete(s.nodeViews, name)
		}
	}
}

// placementNodesLocked is the registry as the placer sees it; s.mu held.
func (s *Server) placementNodesLocked() []placement.Node {
	out := make([]placement.Node, 0, len(s.nodes))
	for name, n := range s.nodes {
		out = append(out, s.nodeViewLocked(name, n).pn)
	}
	s.pruneNodeViewsLocked()
	return out
}

// nodesHashLocked is feasibleMemo.hashNodes of placementNodesLocked's
// nodes, without building the list; s.mu held.
func (s *Server) nodesHashLocked() uint64 {
	sum := uint64(len(s.nodes))
	for name, n := range s.nodes {
		sum += s.nodeViewLocked(name, n).hash
	}
	s.pruneNodeViewsLocked()
	return sum
}

// checkFeasible is placement.Feasible over the current nodes, memoised:
// the nodes are listed only when the memo has no answer for them.
func (s *Server) checkFeasible(j placement.Job) error {
	s.mu.Lock()
	h := s.nodesHashLocked()
	s.mu.Unlock()
	return s.feasible.checkHashed(h, j, func() ([]placement.Node, uint64) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.placementNodesLocked(), s.nodesHashLocked()
	})
}
