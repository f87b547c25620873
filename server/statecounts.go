package server

import "github.com/hpc-sched/hpc/api"

// stateKey is one cell of the live jobs' counts: a user's jobs in a state.
type stateKey struct {
	user  string
	state api.JobState
}

// countStateLocked moves a job from its old record's cell to its new
// one's (either may be nil: created, archived); s.mu held. Every install
// and removal of a live job record goes through it (countLocked, Submit,
// the archive sweep), so GET /v1/jobs?view=counts answers from a few
// cells instead of walking 100,000 jobs — which, polled a few times a
// second by a script waiting for a queue to drain, was a sixth of the
// server's CPU.
func (s *Server) countStateLocked(old, new *job) {
	if s.stateCounts == nil {
		s.stateCounts = map[stateKey]int{}
	}
	if old != nil {
		k := stateKey{old.User, old.State}
		if s.stateCounts[k]--; s.stateCounts[k] <= 0 {
			delete(s.stateCounts, k)
		}
	}
	if new != nil {
		s.stateCounts[stateKey{new.User, new.State}]++
	}
}

// stateCountsLocked sums the cells of user (all users when empty) in
// states (all when empty); s.mu held.
func (s *Server) stateCountsLocked(wantUser string, states map[api.JobState]bool) map[api.JobState]int {
	counts := map[api.JobState]int{}
	for k, n := range s.stateCounts {
		if (wantUser == "" || k.user == wantUser) && (len(states) == 0 || states[k.state]) {
			counts[k.state] += n
		}
	}
	return counts
}
