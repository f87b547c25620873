package server

import (
	"net/http"

	"github.com/hpc-sched/hpc/api"
)

// writeCounts answers GET /v1/jobs?view=counts: the number of jobs per
// state, filtered as the list is. One walk of the live jobs under the
// lock and a few bytes out, where the list of 100,000 jobs is megabytes
// to build, send and parse.
func (s *Server) writeCounts(w http.ResponseWriter, wantUser string, states map[api.JobState]bool) {
	counts := map[api.JobState]int{}
	s.mu.Lock()
	for _, j := range s.jobs {
		if wantUser != "" && j.User != wantUser {
			continue
		}
		if len(states) > 0 && !states[j.State] {
			continue
		}
		counts[j.State]++
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, api.JobCounts{Counts: counts})
}
