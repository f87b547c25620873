package api

import (
	"context"
	"net/http"
	"net/url"
)

// ViewCounts is the value of GET /v1/jobs' view parameter that answers
// JobCounts: how many jobs are in each state (with the same user and
// state filters as the list), without listing them. A script that waits
// for a queue of 100,000 jobs to drain polls this, not the list.
const ViewCounts = "counts"

// JobCounts is the answer to GET /v1/jobs?view=counts. States without
// jobs are absent.
type JobCounts struct {
	Counts map[JobState]int `json:"counts"`
}

// JobCounts counts the jobs of user (all users when empty) in each of the
// comma-separated states (the live ones the server keeps when empty).
func (c *Client) JobCounts(ctx context.Context, user, state string) (map[JobState]int, error) {
	q := url.Values{"view": {ViewCounts}}
	if user != "" {
		q.Set("user", user)
	}
	if state != "" {
		q.Set("state", state)
	}
	var out JobCounts
	if err := c.do(ctx, http.MethodGet, RouteJobs, q, nil, &out); err != nil {
		return nil, err
	}
	if out.Counts == nil {
		out.Counts = map[JobState]int{}
	}
	return out.Counts, nil
}
