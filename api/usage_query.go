package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// UsageQuery selects the ended jobs GET /v1/usage sums (sreport's
// Users= and Accounts=): By groups the rows ("account" or "user");
// empty User or Account takes every one the caller may see; zero times
// take the server's defaults.
type UsageQuery struct {
	By, User, Account string
	Since, Until      time.Time
}

// UsageOf sums the usage of the jobs q selects.
func (c *Client) UsageOf(ctx context.Context, q UsageQuery) (UsageReport, error) {
	v := url.Values{}
	for k, s := range map[string]string{"by": q.By, "user": q.User, "account": q.Account} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	var r UsageReport
	err := c.do(ctx, http.MethodGet, RouteUsage, v, nil, &r)
	return r, err
}
