package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
	"github.com/urfave/cli/v2"
)

// submitFlags are sbatch's most used options; they override the file.
var submitFlags = []cli.Flag{
	&cli.StringFlag{Name: "name", Aliases: []string{"J"}, Usage: "job name `NAME` (replaces the file's)"},
	&cli.StringFlag{Name: "time", Aliases: []string{"t", "walltime"}, Usage: "walltime `T`: \"30m\", \"2:00:00\", \"1-00:00:00\""},
	&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "stdout file `PATTERN` (%j id, %A array id, %a index, %x name)"},
	&cli.StringFlag{Name: "error", Aliases: []string{"e"}, Usage: "stderr file `PATTERN` (default: stderr joins the output file)"},
	&cli.IntFlag{Name: "priority", Usage: "priority `P`, at most the file's (lowering only)"},
	&cli.BoolFlag{Name: "hold", Aliases: []string{"H"}, Usage: "submit held: it starts only after `hpcsub release`"},
	&cli.StringSliceFlag{Name: "after", Usage: "start after jobs `ID[,ID]` have started"},
	&cli.StringSliceFlag{Name: "afterok", Usage: "start after jobs `ID[,ID]` completed successfully (ids or names of your jobs)"},
	&cli.StringSliceFlag{Name: "afternotok", Usage: "start after jobs `ID[,ID]` failed"},
	&cli.StringSliceFlag{Name: "afterany", Usage: "start after jobs `ID[,ID]` ended, however"},
	&cli.StringSliceFlag{Name: "dependency", Aliases: []string{"d"}, Usage: "Slurm-style `LIST`: afterok:42:43,afterany:44"},
	&cli.BoolFlag{Name: "dry-run", Aliases: []string{"test-only"}, Usage: "say where and when the job would start; submit nothing"},
	&cli.BoolFlag{Name: "json", Usage: "print the answer (ids, or the dry run) as JSON"},
}

// submitOpts are the checked submit flags.
type submitOpts struct {
	deps      []string
	overrides *api.SubmitOverrides
	dryRun    bool
}

func submitOptions(c *cli.Context) (submitOpts, error) {
	var o submitOpts
	for _, typ := range []string{jobs.DepAfter, jobs.DepAfterOK, jobs.DepAfterNotOK, jobs.DepAfterAny} {
		for _, v := range c.StringSlice(typ) {
			text := typ + ":" + strings.ReplaceAll(strings.ReplaceAll(v, ",", ":"), " ", "")
			if _, err := jobs.ParseDependencies(text); err != nil {
				return o, usagef("submit", "--%s %s: %v", typ, v, err)
			}
			o.deps = append(o.deps, text)
		}
	}
	for _, v := range c.StringSlice("dependency") {
		if _, err := jobs.ParseDependencies(v); err != nil {
			return o, usagef("submit", "--dependency %s: %v", v, err)
		}
		o.deps = append(o.deps, v)
	}
	ov := &api.SubmitOverrides{
		Name: c.String("name"), Walltime: c.String("time"), Output: c.String("output"),
		Error: c.String("error"), Hold: c.Bool("hold"),
	}
	if c.IsSet("priority") {
		p := c.Int("priority")
		ov.Priority = &p
	}
	if *ov != (api.SubmitOverrides{}) {
		o.overrides = ov
	}
	o.dryRun = c.Bool("dry-run")
	if o.dryRun && c.Bool("wait") {
		return o, usagef("submit", "--dry-run submits nothing, so there is nothing to --wait for")
	}
	return o, nil
}

// checkPaths refuses a job whose working directory or output directories
// do not exist, as the submitting user sees them. Patterns whose directory
// depends on the job id (%j, %A) are checked by the job's start.
func checkPaths(spec *jobs.Spec, cwd, user string) error {
	workdir := cwd
	if spec.Task.Workdir != "" {
		workdir = spec.Task.Workdir
		if !filepath.IsAbs(workdir) {
			workdir = filepath.Join(cwd, workdir)
		}
	}
	if fi, err := os.Stat(workdir); err != nil || !fi.IsDir() {
		return fmt.Errorf("workdir %s does not exist or is not a directory: create it or change workdir", workdir)
	}
	indices := []int{-1}
	if a := spec.Array; a != nil {
		indices = indices[:0]
		for i := 0; i < a.Count && i < 10000; i++ {
			indices = append(indices, a.Index(i))
		}
	}
	seen := map[string]bool{}
	for _, p := range []struct{ what, pattern string }{{"output", spec.Output}, {"error", spec.Error}} {
		if p.pattern == "" {
			continue
		}
		dirPattern := filepath.Dir(p.pattern)
		if strings.Contains(dirPattern, "%j") || strings.Contains(dirPattern, "%A") {
			continue
		}
		for _, idx := range indices {
			dir := jobs.ExpandPattern(dirPattern, 0, idx, spec.Name, user)
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(workdir, dir)
			}
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s directory %s does not exist: create it (mkdir -p %s) or change %s", p.what, dir, dir, p.what)
			}
		}
	}
	return nil
}

// printDryRun says what a submit would do, like sbatch --test-only.
func (e *env) printDryRun(path string, d *api.DryRun, asJSON bool) error {
	if d == nil {
		return fmt.Errorf("%s: the server did not answer the dry run (is it older than this hpcsub?)", path)
	}
	if asJSON {
		return writeJSON(e.stdout, d)
	}
	where := strings.Join(d.Nodes, ",")
	switch {
	case d.CanRun:
		line := "would start now on " + where
		for _, n := range d.Nodes {
			line += fmt.Sprintf("; %s CPUs %s", n, intList(d.CPUIDs[n]))
			if g := d.GPUs[n]; len(g) > 0 {
				line += " GPUs " + intList(g)
			}
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", path, line)
	case d.Start != nil:
		fmt.Fprintf(e.stdout, "%s: would wait (%s), expected to start %s on %s\n", path, d.Reason,
			d.Start.Local().Format(time.RFC3339), dashIfEmpty(where))
	default:
		why := d.Reason
		if d.Detail != "" && d.Detail != d.Reason {
			why += ": " + d.Detail
		}
		fmt.Fprintf(e.stdout, "%s: would wait (%s); no start time can be given yet\n", path, why)
	}
	return nil
}

func intList(a []int) string {
	if len(a) == 0 {
		return "-"
	}
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}
