package jobs

import (
	"github.com/hashicorp/hcl/v2"
)

// Bounds of the restart attributes.
const maxRetryCodes = 32

// retryOnExit decodes checkpoint.retry_on_exit: exit codes 1..255 (0 is
// success, so it cannot be a failure to retry), each at most once.
func (d *decoder) retryOnExit(a *hcl.Attribute) []int {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		d.errorf(a.Expr.Range(), "Invalid value for checkpoint.retry_on_exit", "checkpoint.retry_on_exit must be a list of exit codes, like [75].")
		return nil
	}
	if len(exprs) > maxRetryCodes {
		d.errorf(a.Expr.Range(), "Invalid value for checkpoint.retry_on_exit", "checkpoint.retry_on_exit may hold at most %d exit codes; it has %d.", maxRetryCodes, len(exprs))
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, e := range exprs {
		n, ok := d.integer(&hcl.Attribute{Name: a.Name, Expr: e, Range: e.Range()}, "checkpoint.retry_on_exit entry", 1, 255)
		if !ok || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// onFailure decodes checkpoint.on_failure: what happens to a CRIU job
// whose dump fails.
func (d *decoder) onFailure(a *hcl.Attribute) string {
	s, ok := d.str(a, "checkpoint.on_failure")
	if !ok {
		return ""
	}
	switch s {
	case "requeue", "kill":
		return s
	}
	d.errorf(a.Expr.Range(), "Invalid value for checkpoint.on_failure", `checkpoint.on_failure must be "requeue" (restart from the last good image) or "kill" (end the job); got %q.`, truncate(s))
	return ""
}
