package server

import (
	"maps"
	"strings"

	"github.com/hpc-sched/hpc/api"
)

// DrainGPU takes one GPU of a node out of service (admins only): the
// placer never gives it out again until ResumeGPU, and `hpcsub nodes`
// shows why. A job that holds it now keeps it until it ends.
func (s *Server) DrainGPU(c Caller, name string, idx int, reason string) (api.Node, error) {
	if !s.isAdmin(c.UID) {
		return api.Node{}, forbidden("only admins may drain GPUs")
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 1024 {
		return api.Node{}, refusal(ErrInvalid, "a GPU drain needs a reason of 1..1024 characters (--reason)")
	}
	if err := s.setGPUDrain(name, idx, reason, true); err != nil {
		return api.Node{}, err
	}
	s.Kick()
	return s.apiNode(name)
}

// ResumeGPU returns a drained GPU to service (admins only).
func (s *Server) ResumeGPU(c Caller, name string, idx int) (api.Node, error) {
	if !s.isAdmin(c.UID) {
		return api.Node{}, forbidden("only admins may resume GPUs")
	}
	if err := s.setGPUDrain(name, idx, "", false); err != nil {
		return api.Node{}, err
	}
	s.Kick()
	return s.apiNode(name)
}

func (s *Server) setGPUDrain(name string, idx int, reason string, drain bool) error {
	return s.updateKnownNode(name, func(n *node) error {
		found := false
		for _, g := range n.Reg.GPUs {
			found = found || g.Index == idx
		}
		if !found {
			return notFound("node %s has no GPU %d: see `hpcsub nodes --json`", name, idx)
		}
		m := maps.Clone(n.GPUDrain) // the record is shared until the commit
		if m == nil {
			m = map[int]string{}
		}
		if drain {
			m[idx] = reason
		} else {
			delete(m, idx)
		}
		if len(m) == 0 {
			m = nil
		}
		n.GPUDrain = m
		return nil
	})
}
