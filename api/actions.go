package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// RouteJobActions changes many jobs in one request: cancel, hold,
// release, signal or update of ids, array elements and ranges ("42",
// "42_7", "42_[3-9]"), or of every job of a user in some states.
const RouteJobActions = "/v1/job-actions" // POST ActionRequest -> ActionResponse

// MaxActionTargets is the most targets one ActionRequest may name (413
// beyond); clients send more in several requests.
const MaxActionTargets = 1000

// Actions of an ActionRequest.
const (
	ActionCancel  = "cancel"
	ActionHold    = "hold"
	ActionRelease = "release"
	ActionSignal  = "signal"
	ActionUpdate  = "update"
)

// ActionRequest names an action and the jobs it applies to: Targets, or
// when Targets is empty every live job of User (the caller's own unless
// an admin asks), narrowed to States when given.
type ActionRequest struct {
	Action  string   `json:"action"`
	Targets []string `json:"targets,omitempty"`
	User    string   `json:"user,omitempty"`
	States  []string `json:"states,omitempty"`
	// Signal is the signal to send (ActionSignal), e.g. "SIGUSR1".
	Signal string `json:"signal,omitempty"`
	// Walltime and Priority are the new values of an update; a user may
	// only lower them, an admin may set any.
	Walltime string `json:"walltime,omitempty"`
	Priority *int   `json:"priority,omitempty"`
}

// ActionResult is what became of one target: the jobs it named, as they
// are after the action, or why it was refused.
type ActionResult struct {
	Target string `json:"target"`
	Jobs   []Job  `json:"jobs,omitempty"`
	// More counts by state the jobs the action applied to that Jobs does
	// not list: an answer lists at most 1,000 jobs in full.
	More  map[JobState]int `json:"more,omitempty"`
	Error string           `json:"error,omitempty"`
}

// ActionResponse holds one result per target (one per job when the
// request named a user instead).
type ActionResponse struct {
	Results []ActionResult `json:"results"`
}

// Actions applies one action to many jobs in one request.
func (c *Client) Actions(ctx context.Context, req ActionRequest) (ActionResponse, error) {
	var resp ActionResponse
	err := c.do(ctx, http.MethodPost, RouteJobActions, nil, req, &resp)
	return resp, err
}

// DryRun is the answer to a submit with DryRun set: whether and where the
// job would start now, or when and where its reservation would be, and
// why not now. Nothing is created.
type DryRun struct {
	CanRun bool             `json:"can_run"`         // it would start at once
	Start  *time.Time       `json:"start,omitempty"` // now, or its reservation's start
	Nodes  []string         `json:"nodes"`
	GPUs   map[string][]int `json:"gpus"`              // node -> GPU ids
	CPUIDs map[string][]int `json:"cpu_ids,omitempty"` // node -> CPU ids
	Reason string           `json:"reason,omitempty"`  // why it would wait
	Detail string           `json:"detail,omitempty"`
}

// SubmitOverrides are submit-time settings that replace the job file's,
// as sbatch's options replace #SBATCH lines.
type SubmitOverrides struct {
	Name     string `json:"name,omitempty"`
	Walltime string `json:"walltime,omitempty"`
	Output   string `json:"output,omitempty"`
	Error    string `json:"error,omitempty"`
	Priority *int   `json:"priority,omitempty"` // at most the file's
	Hold     bool   `json:"hold,omitempty"`     // submit HELD
}

// ArrayJobs lists the elements of array arrayID (the caller's, or their
// public part for another user's array).
func (c *Client) ArrayJobs(ctx context.Context, arrayID uint64) ([]Job, error) {
	var jobs []Job
	err := c.do(ctx, http.MethodGet, RouteJobs, url.Values{"array": {strconv.FormatUint(arrayID, 10)}}, nil, &jobs)
	return jobs, err
}
