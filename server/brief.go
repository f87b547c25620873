package server

import "github.com/hpc-sched/hpc/api"

// apiBrief is the job as a brief list shows it (api.JobBrief); the
// derived fields follow apiJob's rules.
func (j *job) apiBrief() api.JobBrief {
	out := api.JobBrief{
		ID: j.ID, Name: j.Name, User: j.User, State: j.State, Reason: j.Reason,
		NodesWanted: j.Nodes, StartTime: j.Start, EndTime: j.End, ArrayJobID: j.ArrayJobID,
	}
	if len(j.Alloc) > 0 {
		out.Nodes = j.nodeNames()
	}
	if j.ArrayIndex >= 0 {
		idx := j.ArrayIndex
		out.ArrayIndex = &idx
	}
	if j.State == api.StatePending && j.waitReason != "" {
		out.Reason = j.waitReason
	}
	if !j.reservedStart.IsZero() && j.State == api.StatePending {
		t := j.reservedStart
		out.ReservedStart = &t
	}
	return out
}
