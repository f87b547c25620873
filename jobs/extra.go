package jobs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Bounds of the features a Slurm user brings: array indices, dependencies.
const (
	maxArrayIndex   = 10_000_000
	maxDependencies = 64
)

// Dependency types, as Slurm names them.
const (
	DepAfter      = "after"      // the target has started (or ended)
	DepAfterOK    = "afterok"    // the target completed (exit 0)
	DepAfterNotOK = "afternotok" // the target ended in any other way
	DepAfterAny   = "afterany"   // the target ended
)

// Dependency is one job this job waits for: Target is a job id ("42"), an
// array element ("42_7") or the name of one of the user's jobs; an array
// means all its elements.
type Dependency struct {
	Type   string
	Target string
}

// String is the Slurm form, "afterok:42".
func (d Dependency) String() string { return d.Type + ":" + d.Target }

// ParseDependencies reads Slurm-style dependency text: "afterok:42:43",
// "afterany:42,afterok:prep", or a bare target list "42,43" (afterok), as
// depends_on entries and the --after* flags give them.
func ParseDependencies(s string) ([]Dependency, error) {
	var out []Dependency
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, rest := DepAfterOK, part
		if t, r, ok := strings.Cut(part, ":"); ok {
			typ, rest = strings.ToLower(strings.TrimSpace(t)), r
		}
		switch typ {
		case DepAfter, DepAfterOK, DepAfterNotOK, DepAfterAny:
		default:
			return nil, fmt.Errorf("unknown dependency type %q in %q: use after, afterok, afternotok or afterany (e.g. \"afterok:42\")", truncate(typ), truncate(part))
		}
		for _, target := range strings.Split(rest, ":") {
			target = strings.TrimSpace(target)
			if !validDepTarget(target) {
				return nil, fmt.Errorf("dependency %q: %q is neither a job id (42, or 42_7 for an array element) nor a job name", truncate(part), truncate(target))
			}
			out = append(out, Dependency{Type: typ, Target: target})
		}
	}
	if len(out) > maxDependencies {
		return nil, fmt.Errorf("at most %d dependencies, got %d", maxDependencies, len(out))
	}
	return out, nil
}

func validDepTarget(t string) bool {
	if id, idx, ok := strings.Cut(t, "_"); ok && isDigits(id) {
		return isDigits(idx)
	}
	return isDigits(t) || jobNameRE.MatchString(t)
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseIndices reads array indices as Slurm writes them: "0-99",
// "1-99:2", "1,3,8-10". The result is ascending without duplicates.
func ParseIndices(s string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		rng, stepText, hasStep := strings.Cut(part, ":")
		loText, hiText, isRange := strings.Cut(rng, "-")
		lo, err := strconv.Atoi(strings.TrimSpace(loText))
		if err != nil || lo < 0 || lo > maxArrayIndex {
			return nil, fmt.Errorf("%q: indices are whole numbers from 0 to %d, written like \"0-99\", \"1-99:2\" or \"1,3,8-10\"", truncate(part), maxArrayIndex)
		}
		hi, step := lo, 1
		if isRange {
			if hi, err = strconv.Atoi(strings.TrimSpace(hiText)); err != nil || hi < lo || hi > maxArrayIndex {
				return nil, fmt.Errorf("%q: a range is LOW-HIGH with LOW <= HIGH <= %d", truncate(part), maxArrayIndex)
			}
		}
		if hasStep {
			if step, err = strconv.Atoi(strings.TrimSpace(stepText)); err != nil || step < 1 || !isRange {
				return nil, fmt.Errorf("%q: a step follows a range, as in \"1-99:2\", and is at least 1", truncate(part))
			}
		}
		for i := lo; i <= hi; i += step {
			if !seen[i] {
				if len(out) >= maxArrayCount {
					return nil, fmt.Errorf("an array holds at most %d tasks", maxArrayCount)
				}
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// jobName evaluates the job label, which may use ${var.NAME} (the shell
// rule keeps it text until here: HCL allows no template in a label).
func (d *decoder) jobName(block *hcl.Block) string {
	name := block.Labels[0]
	if !strings.Contains(name, "${") {
		return name
	}
	start := block.LabelRanges[0].Start
	start.Column++ // past the opening quote
	start.Byte++
	expr, diags := hclsyntax.ParseTemplate([]byte(name), block.LabelRanges[0].Filename, start)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return name
	}
	s, ok := d.strExpr(expr, "job name")
	if !ok {
		return name
	}
	return s
}

// scriptFile reads a task's script_file: a file beside the job file.
func (d *decoder) scriptFile(a *hcl.Attribute) (string, string, bool) {
	name, ok := d.str(a, "script_file")
	if !ok {
		return "", "", false
	}
	if name == "" || len(name) > maxPathLen {
		d.errorf(a.Expr.Range(), "Invalid value for script_file", "script_file must name a file of 1 to %d bytes, e.g. \"run.sh\" beside the job file.", maxPathLen)
		return "", "", false
	}
	read := d.opt.ReadScript
	if read == nil {
		read = func(name string) ([]byte, error) {
			p := name
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(d.filename), p)
			}
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(io.LimitReader(f, maxScriptLen+1))
		}
	}
	data, err := read(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(a.Expr.Range(), "Missing script_file", "%s does not exist; script_file is read at submit, relative to the job file's directory.", truncate(name))
		return "", "", false
	case err != nil:
		d.errorf(a.Expr.Range(), "Unreadable script_file", "cannot read %s: %v", truncate(name), err)
		return "", "", false
	case len(data) > maxScriptLen || len(strings.TrimSpace(string(data))) == 0:
		d.errorf(a.Expr.Range(), "Invalid script_file", "%s must hold 1 byte to 1 MiB of script.", truncate(name))
		return "", "", false
	case strings.IndexByte(string(data), 0) >= 0:
		d.errorf(a.Expr.Range(), "Invalid script_file", "%s holds NUL bytes: it is not a script (run a program with command = ...).", truncate(name))
		return "", "", false
	}
	return name, string(data), true
}

// checkShebang refuses a "#!" line that the kernel could not run: the
// interpreter must be an absolute path.
func (d *decoder) checkShebang(rng hcl.Range, script string) {
	if !strings.HasPrefix(script, "#!") {
		return
	}
	line, _, _ := strings.Cut(script[2:], "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 || !filepath.IsAbs(fields[0]) {
		d.errorf(rng, "Invalid script interpreter", "The script's first line %q must name an absolute interpreter path, e.g. #!/bin/bash or #!/usr/bin/env python3.", truncate("#!"+line))
	}
}

// dependsOn decodes depends_on: a list of "TYPE:TARGET" or bare targets.
func (d *decoder) dependsOn(a *hcl.Attribute) []Dependency {
	list, ranges, ok := d.strList(a, "depends_on", maxDependencies)
	if !ok {
		return nil
	}
	var out []Dependency
	for i, s := range list {
		deps, err := ParseDependencies(s)
		if err != nil || len(deps) == 0 {
			if err == nil {
				err = errors.New("empty entry")
			}
			d.errorf(ranges[i], "Invalid value for depends_on", "%v. Entries are job ids or names of your jobs, optionally typed: [\"42\", \"afterany:prep\"].", err)
			continue
		}
		out = append(out, deps...)
	}
	return out
}

// indices decodes array.indices, a Slurm index string.
func (d *decoder) indices(a *hcl.Attribute) ([]int, bool) {
	v, ok := d.evalExpr(a.Expr)
	if !ok {
		return nil, false
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid value for array.indices", `array.indices must be a string such as "0-99", "1-99:2" or "1,3,8-10".`)
		return nil, false
	}
	idx, err := ParseIndices(sv.AsString())
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid value for array.indices", "%v", err)
		return nil, false
	}
	return idx, true
}

// cancelSignal decodes cancel_signal: what a cancel sends before SIGKILL.
func (d *decoder) cancelSignal(a *hcl.Attribute) string {
	s, ok := d.str(a, "cancel_signal")
	if !ok {
		return ""
	}
	sig, err := normaliseSignal(s)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid value for cancel_signal", "cancel_signal %q: use a signal the job can handle, such as SIGTERM (the default), SIGINT or SIGUSR1; SIGKILL follows it after the grace time anyway.", truncate(s))
		return ""
	}
	return sig
}
