package jobs

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder evaluates attributes against the variables and collects
// diagnostics, so that one pass over a file reports every mistake. Its
// helpers return ok=false on a mistake (already reported), on null (which
// means "not set" in HCL) and on an unknown value (a variable that already
// failed), so callers simply keep their default.
type decoder struct {
	ctx      *hcl.EvalContext
	diags    hcl.Diagnostics
	filename string  // the job file, for paths relative to it
	opt      Options // how to read a script_file
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

func (d *decoder) evalExpr(expr hcl.Expression) (cty.Value, bool) {
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// strExpr converts an expression to a string with no NUL bytes (which no
// path, argument or environment entry can carry to exec).
func (d *decoder) strExpr(expr hcl.Expression, what string) (string, bool) {
	v, ok := d.evalExpr(expr)
	if !ok {
		return "", false
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		d.errorf(expr.Range(), "Invalid value for "+what, "%s must be a string, not %s.", what, v.Type().FriendlyName())
		return "", false
	}
	s := sv.AsString()
	if strings.IndexByte(s, 0) >= 0 {
		d.errorf(expr.Range(), "Invalid value for "+what, "%s must not contain NUL bytes.", what)
		return "", false
	}
	return s, true
}

// strEntry is strExpr for list and map entries, where null is a mistake
// rather than "not set".
func (d *decoder) strEntry(expr hcl.Expression, what string) (string, bool) {
	if v, diags := expr.Value(d.ctx); !diags.HasErrors() && v.IsNull() {
		d.errorf(expr.Range(), "Invalid value for "+what, "%s must not be null.", what)
		return "", false
	}
	return d.strExpr(expr, what)
}

func (d *decoder) str(attr *hcl.Attribute, what string) (string, bool) {
	return d.strExpr(attr.Expr, what)
}

// integer converts to a whole number within [lo, hi].
func (d *decoder) integer(attr *hcl.Attribute, what string, lo, hi int64) (int, bool) {
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return 0, false
	}
	nv, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s must be a whole number from %d to %d, not %s.", what, lo, hi, v.Type().FriendlyName())
		return 0, false
	}
	f := nv.AsBigFloat()
	if !f.IsInt() || f.Cmp(new(big.Float).SetInt64(lo)) < 0 || f.Cmp(new(big.Float).SetInt64(hi)) > 0 {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s must be a whole number from %d to %d; got %s.", what, lo, hi, formatNumber(f))
		return 0, false
	}
	n, _ := f.Int64()
	return int(n), true
}

// formatNumber renders a number for messages; huge ones are not spelt out,
// since big.Float formats them in time proportional to their exponent.
func formatNumber(f *big.Float) string {
	if exp := f.MantExp(nil); exp > 64 || exp < -64 {
		return "a number out of range"
	}
	return f.Text('g', 10)
}

func (d *decoder) boolean(attr *hcl.Attribute, what string) (bool, bool) {
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return false, false
	}
	bv, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s must be true or false.", what)
		return false, false
	}
	return bv.True(), true
}

// size accepts a size string ("64GiB") or a number of bytes, within [lo, hi].
func (d *decoder) size(attr *hcl.Attribute, what string, lo, hi int64) (int64, bool) {
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return 0, false
	}
	var n int64
	if v.Type() == cty.Number {
		f := v.AsBigFloat()
		i, acc := f.Int64()
		if !f.IsInt() || acc != big.Exact {
			d.errorf(attr.Expr.Range(), "Invalid value for "+what, `%s must be a whole number of bytes or a size such as "64GiB".`, what)
			return 0, false
		}
		n = i
	} else {
		s, ok := d.strExpr(attr.Expr, what)
		if !ok {
			return 0, false
		}
		var err error
		if n, err = ParseSize(s); err != nil {
			d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s", err)
			return 0, false
		}
	}
	if n < lo || n > hi {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s must be from %s to %s; got %s.", what, formatSize(lo), formatSize(hi), formatSize(n))
		return 0, false
	}
	return n, true
}

// duration accepts a duration string within [lo, hi]. Numbers are refused:
// users would disagree whether 90 means seconds or (as in Slurm) minutes.
func (d *decoder) duration(attr *hcl.Attribute, what string, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return 0, false
	}
	if v.Type() != cty.String {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, `%s must be a quoted duration such as "4h", "90m" or "1-02:00:00".`, what)
		return 0, false
	}
	s, ok := d.strExpr(attr.Expr, what)
	if !ok {
		return 0, false
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s", err)
		return 0, false
	}
	if dur < lo || dur > hi {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s must be from %s to %s; got %s.", what, lo, formatDuration(hi), dur)
		return 0, false
	}
	return dur, true
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// strList decodes a list of strings of at most maxLen entries. For a literal
// list each entry keeps its own range, so a bad entry is pointed at exactly.
func (d *decoder) strList(attr *hcl.Attribute, what string, maxLen int) ([]string, []hcl.Range, bool) {
	if exprs, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() {
		if len(exprs) > maxLen {
			d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s may hold at most %d entries; it has %d.", what, maxLen, len(exprs))
			return nil, nil, false
		}
		out := make([]string, 0, len(exprs))
		ranges := make([]hcl.Range, 0, len(exprs))
		ok := true
		for _, e := range exprs {
			s, sok := d.strEntry(e, what+" entry")
			if !sok {
				ok = false
				continue
			}
			out = append(out, s)
			ranges = append(ranges, e.Range())
		}
		return out, ranges, ok
	}
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return nil, nil, false
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !lv.IsWhollyKnown() {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, `%s must be a list of strings, like ["a", "b"].`, what)
		return nil, nil, false
	}
	if lv.LengthInt() > maxLen {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s may hold at most %d entries; it has %d.", what, maxLen, lv.LengthInt())
		return nil, nil, false
	}
	var out []string
	var ranges []hcl.Range
	for it := lv.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || strings.IndexByte(e.AsString(), 0) >= 0 {
			d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s entries must be strings without NUL bytes.", what)
			return nil, nil, false
		}
		out = append(out, e.AsString())
		ranges = append(ranges, attr.Expr.Range())
	}
	return out, ranges, true
}

type kv struct {
	key, value string
	keyRange   hcl.Range
}

// strMap decodes a map of strings (numbers and bools become strings, as in
// a shell). Entries of a literal object keep their key ranges.
func (d *decoder) strMap(attr *hcl.Attribute, what string) ([]kv, bool) {
	if pairs, diags := hcl.ExprMap(attr.Expr); !diags.HasErrors() {
		out := make([]kv, 0, len(pairs))
		ok := true
		for _, p := range pairs {
			k, kok := d.strEntry(p.Key, what+" key")
			v, vok := d.strEntry(p.Value, what+" value")
			if !kok || !vok {
				ok = false
				continue
			}
			out = append(out, kv{k, v, p.Key.Range()})
		}
		return out, ok
	}
	v, ok := d.evalExpr(attr.Expr)
	if !ok {
		return nil, false
	}
	mv, err := convert.Convert(v, cty.Map(cty.String))
	if err != nil || !mv.IsWhollyKnown() {
		d.errorf(attr.Expr.Range(), "Invalid value for "+what, `%s must be a map of strings, like { NAME = "value" }.`, what)
		return nil, false
	}
	var out []kv
	for it := mv.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() || strings.IndexByte(e.AsString(), 0) >= 0 {
			d.errorf(attr.Expr.Range(), "Invalid value for "+what, "%s values must be strings without NUL bytes.", what)
			return nil, false
		}
		out = append(out, kv{k.AsString(), e.AsString(), attr.Expr.Range()})
	}
	return out, true
}

// content decodes a block body against schema and reports repeated blocks,
// returning the first block of each type.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, map[string]*hcl.Block) {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	blocks := map[string]*hcl.Block{}
	for _, b := range c.Blocks {
		if first, dup := blocks[b.Type]; dup {
			d.errorf(b.DefRange, "Duplicate "+b.Type+" block", "Only one %s block is allowed here; the first is at %s. Merge them.", b.Type, first.DefRange)
			continue
		}
		blocks[b.Type] = b
	}
	return c, blocks
}
