package main

import (
	"strconv"

	"github.com/hpc-sched/hpc/api"
)

// queueCounts prints how many jobs are in each state (`queue --count`):
// what a script waiting for a queue to drain needs, at the cost of a few
// bytes however long the queue is. Filters as the listing does.
func (e *env) queueCounts(cl *api.Client, user, state string, asJSON bool) error {
	ctx, cancel := e.request()
	defer cancel()
	counts, err := cl.JobCounts(ctx, user, state)
	if err != nil {
		return explain(cl, err)
	}
	if asJSON {
		return writeJSON(e.stdout, counts)
	}
	tw := newTable(e.stdout)
	row(tw, "STATE", "JOBS")
	for _, st := range allStates {
		if n := counts[api.JobState(st)]; n > 0 {
			row(tw, st, strconv.Itoa(n))
		}
	}
	return tw.Flush()
}
