package server

import (
	"net/http"

	"github.com/hpc-sched/hpc/api"
)

// redact hides what is private in another user's job: its paths, usage,
// runs and history. Everyone sees who runs what where, and why a job waits, as
// in Slurm's squeue; the environment and command are never in api.Job.
func redact(j api.Job) api.Job {
	j.Workdir, j.Output, j.Error = "", "", ""
	j.History, j.Usage, j.Runs = nil, nil, nil
	j.Private = true
	return j
}

// visibleJob answers GET /v1/jobs/{id}: the whole job for its owner and
// admins, the public part for everyone else; live or archived.
func (s *Server) visibleJob(r *http.Request) (api.Job, error) {
	id, err := jobID(r)
	if err != nil {
		return api.Job{}, err
	}
	aj, err := s.jobView(id)
	if err != nil {
		return api.Job{}, err
	}
	if c := callerOf(r); uint32(aj.UID) != c.UID && !s.isAdmin(c.UID) {
		aj = redact(aj)
	}
	return aj, nil
}
