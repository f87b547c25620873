package server

import (
	"time"

	"github.com/hpc-sched/hpc/api"
)

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
	out.ArrayIndex = j.arrayIndex()
	out.Reason, out.ReservedStart = j.waitView()
	return out
}

// arrayIndex is the job's index in its array, nil when not an array task.
func (j *job) arrayIndex() *int {
	if j.ArrayIndex < 0 {
		return nil
	}
	idx := j.ArrayIndex
	return &idx
}

// waitView is the reason and reserved start both job views show: a
// pending job's scheduler wait reason (derived, never stored) over its
// stored reason, and the start the placer reserved for it.
func (j *job) waitView() (reason string, reserved *time.Time) {
	reason = j.Reason
	if j.State != api.StatePending {
		return reason, nil
	}
	if j.waitReason != "" {
		reason = j.waitReason
	}
	if !j.reservedStart.IsZero() {
		t := j.reservedStart
		reserved = &t
	}
	return reason, reserved
}
