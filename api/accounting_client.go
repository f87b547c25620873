package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Routes of the accounting API.
const (
	// RouteHistory: GET ended jobs, ?user=&account=&state=S1,S2&since=&until=
	// (RFC 3339; since defaults to a day ago)&after=CURSOR&limit=N.
	RouteHistory = "/v1/history"
	// RouteUsage: GET usage sums, ?by=account|user&since=&until=.
	RouteUsage = "/v1/usage"
	// RoutePriority: GET the priority factors of pending jobs, ?id=N for one.
	RoutePriority = "/v1/priority"
)

// HistoryQuery selects ended jobs for History.
type HistoryQuery struct {
	User, Account string
	States        []JobState
	Since, Until  time.Time // zero Since: the server's default (a day ago)
	After         string    // cursor from the previous page
	Limit         int       // 0: the server's default page size
	Brief         bool      // rows (HistoryRow) instead of whole jobs
}

func (q HistoryQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("user", q.User)
	set("account", q.Account)
	for i, s := range q.States {
		if i == 0 {
			v.Set("state", string(s))
		} else {
			v.Set("state", v.Get("state")+","+string(s))
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	set("after", q.After)
	if q.Brief {
		v.Set("brief", "1")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// History returns one page of ended jobs; pass its Next as After for the
// next page.
func (c *Client) History(ctx context.Context, q HistoryQuery) (History, error) {
	var h History
	err := c.do(ctx, http.MethodGet, RouteHistory, q.values(), nil, &h)
	return h, err
}

// Usage sums the usage of jobs that ended in [since, until) by account or
// user; zero times take the server's defaults.
func (c *Client) Usage(ctx context.Context, by string, since, until time.Time) (UsageReport, error) {
	v := url.Values{}
	if by != "" {
		v.Set("by", by)
	}
	if !since.IsZero() {
		v.Set("since", since.Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		v.Set("until", until.Format(time.RFC3339Nano))
	}
	var r UsageReport
	err := c.do(ctx, http.MethodGet, RouteUsage, v, nil, &r)
	return r, err
}

// Priority returns the priority factors of pending jobs; id 0 means all
// the caller may see.
func (c *Client) Priority(ctx context.Context, id uint64) (PriorityReport, error) {
	v := url.Values{}
	if id != 0 {
		v.Set("id", strconv.FormatUint(id, 10))
	}
	var r PriorityReport
	err := c.do(ctx, http.MethodGet, RoutePriority, v, nil, &r)
	return r, err
}
