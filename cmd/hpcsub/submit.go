package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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
		Usage:     "validate a job file and queue it; prints the job id(s)",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "follow the job until it ends and exit with its exit code"},
			varFlag,
		},
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
	switch {
	case c.NArg() == 0:
		return usagef("submit", "missing FILE")
	case c.NArg() > 1:
		return usagef("submit", "one FILE at a time, got %d", c.NArg())
	}
	vars, err := parseVars("submit", c.StringSlice("var"))
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	path := c.Args().First()
	src, spec, err := readJobFile(path, vars)
	if err != nil {
		e.printParseError(err)
		return exitStatus(1)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("cannot resolve %s: %w", path, err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("cannot determine the current directory (the job's default workdir): %w", err)
	}
	req := api.SubmitRequest{
		Filename: abs,
		Source:   string(src),
		Vars:     vars,
		Env:      environ(),
		Cwd:      cwd,
		Umask:    currentUmask(),
	}
	if spec.Task.ScriptFile != "" {
		// Sent as validated here: the server never reads user paths.
		req.Files = map[string]string{spec.Task.ScriptFile: spec.Task.Script}
	}
	ctx, cancel := e.request()
	resp, err := cl.Submit(ctx, req)
	cancel()
	if err != nil {
		return explain(cl, err)
	}
	for _, id := range resp.IDs {
		fmt.Fprintln(e.stdout, id)
	}
	if !c.Bool("wait") {
		return nil
	}
	return e.waitAll(cl, resp.IDs)
}

// waitAll follows every job of a submit until it ends, prints each final
// state line to stderr and exits with the first failure's status (in id
// order), or 0 when all completed.
func (e *env) waitAll(cl *api.Client, ids []uint64) error {
	status := 0
	for _, id := range ids {
		j, err := cl.Wait(e.ctx, id)
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
