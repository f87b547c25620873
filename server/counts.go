package server

import (
	"net/http"

	"github.com/hpc-sched/hpc/api"
)

// writeCounts answers GET /v1/jobs?view=counts: the number of jobs per
// state, filtered as the list is, from the counts kept as records change
// (statecounts.go): a few bytes out, where the list of 100,000 jobs is
// megabytes to build, send and parse.
func (s *Server) writeCounts(w http.ResponseWriter, wantUser string, states map[api.JobState]bool) {
	s.mu.Lock()
	counts := s.stateCountsLocked(wantUser, states)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, api.JobCounts{Counts: counts})
}
