package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
	"github.com/urfave/cli/v2"
)

var varFlag = &cli.StringSliceFlag{
	Name:  "var",
	Usage: "set a job file variable `NAME=VALUE`: -var epochs=10 (repeatable)",
}

func submitCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "submit",
		Usage:     "validate job files and queue them; prints the job id(s)",
		ArgsUsage: "FILE... (- reads the job file from stdin)",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "print the job's state changes until it ends; exit with its exit code"},
			varFlag,
		}, submitFlags...),
		Action: e.submit,
	}
}

func validateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check job files without a daemon; exit 1 on any error",
		ArgsUsage: "FILE...",
		Flags:     []cli.Flag{varFlag},
		Action:    e.validate,
	}
}

// parseVars reads -var k=v flags.
func parseVars(cmd string, flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	vars := make(map[string]string, len(flags))
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usagef(cmd, "invalid -var %q: want NAME=VALUE", f)
		}
		vars[k] = v
	}
	return vars, nil
}

// readJobFile reads and parses a job file locally, so mistakes are shown
// with snippets and nothing reaches the server. The bytes returned are
// the ones that were validated, and the ones to send.
func readJobFile(path string, vars map[string]string) ([]byte, *jobs.Spec, error) {
	src, err := jobs.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot %w", err)
	}
	spec, err := jobs.Parse(path, src, vars)
	if err != nil {
		return nil, nil, err
	}
	return src, spec, nil
}

// printParseError shows HCL diagnostics with file:line:col and snippets;
// other errors (an unreadable file) as one line.
func (e *env) printParseError(err error) {
	var je *jobs.Error
	if errors.As(err, &je) {
		writeDiagnostics(e.stderr, je)
		return
	}
	fmt.Fprintf(e.stderr, "hpcsub: %s\n", oneLine(err.Error()))
}

func (e *env) validate(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("validate", "missing FILE")
	}
	vars, err := parseVars("validate", c.StringSlice("var"))
	if err != nil {
		return err
	}
	failed := false
	for _, path := range c.Args().Slice() {
		if _, _, err := readJobFile(path, vars); err != nil {
			e.printParseError(err)
			failed = true
			continue
		}
		fmt.Fprintf(e.stdout, "%s: ok\n", path)
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

func (e *env) submit(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("submit", "missing FILE (or - for stdin)")
	}
	vars, err := parseVars("submit", c.StringSlice("var"))
	if err != nil {
		return err
	}
	opts, err := submitOptions(c)
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("cannot determine the current directory (the job's default workdir): %w", err)
	}
	var all []uint64
	for _, path := range c.Args().Slice() {
		req, err := e.submitRequest(path, vars, opts, cwd)
		if err != nil {
			return err
		}
		ctx, cancel := e.request()
		resp, err := cl.Submit(ctx, req)
		cancel()
		if err != nil {
			if c.NArg() > 1 {
				return fmt.Errorf("%s: %w", path, explain(cl, err))
			}
			return explain(cl, err)
		}
		if req.DryRun {
			if err := e.printDryRun(path, resp.DryRun, c.Bool("json")); err != nil {
				return err
			}
			continue
		}
		if c.Bool("json") {
			if err := writeJSON(e.stdout, resp); err != nil {
				return err
			}
		} else {
			for _, id := range resp.IDs {
				fmt.Fprintln(e.stdout, id)
			}
		}
		all = append(all, resp.IDs...)
	}
	if !c.Bool("wait") || len(all) == 0 {
		return nil
	}
	return e.waitAll(cl, all)
}

// submitRequest reads, validates (locally, with snippets on mistakes) and
// packs one job file; path "-" is stdin.
func (e *env) submitRequest(path string, vars map[string]string, opts submitOpts, cwd string) (api.SubmitRequest, error) {
	var src []byte
	var spec *jobs.Spec
	var err error
	abs := path
	if path == "-" {
		abs = filepath.Join(cwd, "stdin.hcl")
		src, err = io.ReadAll(io.LimitReader(e.stdin, jobs.MaxFileSize+1))
		if err == nil {
			spec, err = jobs.Parse(abs, src, vars)
		}
	} else {
		src, spec, err = readJobFile(path, vars)
		if err == nil {
			abs, err = filepath.Abs(path)
		}
	}
	if err != nil {
		e.printParseError(err)
		return api.SubmitRequest{}, exitStatus(1)
	}
	req := api.SubmitRequest{
		Filename:     abs,
		Source:       string(src),
		Vars:         vars,
		Env:          environ(),
		Cwd:          cwd,
		Umask:        currentUmask(),
		Dependencies: opts.deps,
		Overrides:    opts.overrides,
		DryRun:       opts.dryRun,
	}
	if spec.Task.ScriptFile != "" {
		// Sent as validated here: the server never reads user paths.
		req.Files = map[string]string{spec.Task.ScriptFile: spec.Task.Script}
	}
	if o := opts.overrides; o != nil {
		if err := spec.Override(jobs.Overrides{Name: o.Name, Walltime: o.Walltime, Output: o.Output, Error: o.Error, Priority: o.Priority}); err != nil {
			return req, usagef("submit", "%v", err)
		}
	}
	// Checked here, as the submitting user: a missing directory is refused
	// now rather than failing every task at start. The user's name only
	// matters to a %u pattern; looking it up costs a short-lived process
	// the name service's files and sockets.
	user := ""
	if strings.Contains(spec.Output, "%u") || strings.Contains(spec.Error, "%u") {
		user = currentUser()
	}
	if err := checkPaths(spec, cwd, user); err != nil {
		return req, fmt.Errorf("%s: %w", path, err)
	}
	return req, nil
}

// waitAll follows every job of a submit until it ends, prints its state
// changes and each final state line to stderr and exits with the first failure's status (in id
// order), or 0 when all completed.
func (e *env) waitAll(cl *api.Client, ids []uint64) error {
	status := 0
	for _, id := range ids {
		j, err := e.followJob(cl, id)
		if err != nil {
			if e.ctx.Err() != nil {
				return fmt.Errorf("stopped waiting for job %d; it keeps running (see `hpcsub show %d`, `hpcsub cancel %d`)", id, id, id)
			}
			return fmt.Errorf("waiting for job %d: %w", id, err)
		}
		fmt.Fprintln(e.stderr, finalLine(j))
		if s := jobExitStatus(j); status == 0 {
			status = s
		}
	}
	if status != 0 {
		return exitStatus(status)
	}
	return nil
}

// environ is the whole current environment: a job runs with the
// submitter's environment, as Slurm's default --export=ALL.
func environ() map[string]string {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// currentUmask reads the process's umask (the only way is to set it), so
// the job's files get the same privacy as files the user makes here.
func currentUmask() *uint32 {
	m := syscall.Umask(0)
	syscall.Umask(m)
	u := uint32(m)
	return &u
}

// followJob prints job id's state changes ("job 42 PENDING: Dependency
// (afterok:41)", "job 42 RUNNING on vm") to stderr until it ends, and
// returns it as it ended.
func (e *env) followJob(cl *api.Client, id uint64) (api.Job, error) {
	last := ""
	for {
		ctx, cancel := e.request()
		j, err := cl.Job(ctx, id)
		cancel()
		if err != nil {
			return j, err
		}
		if api.Terminal(j.State) {
			return j, nil
		}
		if line := progressLine(j); line != last {
			fmt.Fprintln(e.stderr, line)
			last = line
		}
		select {
		case <-e.ctx.Done():
			return j, e.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// progressLine is one state of a live job, as --wait prints it.
func progressLine(j api.Job) string {
	line := fmt.Sprintf("job %d %s", j.ID, j.State)
	switch {
	case j.State == api.StateRunning && len(j.Nodes) > 0:
		line += " on " + strings.Join(j.Nodes, ",")
	case j.Reason != "" && j.Reason != "submitted":
		line += ": " + j.Reason
	}
	return line
}
