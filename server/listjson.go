package server

import (
	"bufio"
	"encoding/json"
	"net/http"

	"github.com/hpc-sched/hpc/api"
)

// writeJobsJSON writes jobs as writeJSON would (the same bytes: a JSON
// array and a newline) but one element at a time through a small buffer.
// writeJSON encodes the whole value into one buffer first: for a list of
// 100,000 jobs (~50 MB of JSON) that buffer, grown by doubling, more than
// doubled the server's heap at its peak.
func writeJobsJSON(w http.ResponseWriter, jobs []api.Job) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteByte('[')
	for i := range jobs {
		if i > 0 {
			bw.WriteByte(',')
		}
		b, err := json.Marshal(&jobs[i])
		if err != nil {
			// Not reachable for api.Job (no channels, funcs or NaN
			// floats); stop rather than send a broken array silently.
			return
		}
		bw.Write(b)
	}
	bw.WriteString("]\n")
	bw.Flush()
}

// countListedLocked counts the jobs a list with these filters returns;
// s.mu held.
func (s *Server) countListedLocked(wantUser string, states map[api.JobState]bool) int {
	n := 0
	for _, j := range s.jobs {
		if (wantUser == "" || j.User == wantUser) && (len(states) == 0 || states[j.State]) {
			n++
		}
	}
	return n
}
