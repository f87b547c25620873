// Command hpcsub is the user and admin command line of the batch system:
// it validates and submits HCL job files and shows, changes and follows
// jobs and nodes through hpcd's /v1 API.
//
// Exit status: 0 on success, 1 when a request was refused or failed (one
// line on stderr says why and what to do), 2 for bad usage. `submit --wait`
// exits with the job's own exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/urfave/cli/v2"
)

// requestTimeout bounds every request except the ones that follow a job
// (submit --wait, logs -f), so a wedged server cannot hang a script.
const requestTimeout = time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	os.Exit(code)
}

// env is what every command needs from its surroundings, so that tests
// can substitute writers and the clock.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
}

func runContext(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	e := &env{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr, now: now}
	app := newApp(e)
	args, err := permuteArgs(app, args)
	if err == nil {
		err = app.Run(append([]string{"hpcsub"}, args...))
	}
	return e.report(err)
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:      "hpcsub",
		Usage:     "submit and manage jobs on an hpc cluster",
		UsageText: "hpcsub [--addr ADDR] COMMAND [flags] [args]",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:  "addr",
				Usage: "hpcd address `ADDR`: unix:///path/to.sock, http://host:port or https://host:port (default $" + api.EnvAddr + ", else " + api.ClientSocketPath() + ")",
			},
		},
		Commands: []*cli.Command{
			submitCommand(e),
			validateCommand(e),
			queueCommand(e),
			showCommand(e),
			actionCommand(e, api.ActionCancel, "cancel jobs: pending ones never start, running ones get SIGTERM, then SIGKILL after the grace time"),
			actionCommand(e, api.ActionHold, "keep pending jobs from starting until released"),
			actionCommand(e, api.ActionRelease, "let held jobs be scheduled again"),
			actionCommand(e, api.ActionUpdate, ""),
			logsCommand(e),
			historyCommand(e),
			usageCommand(e),
			effCommand(e),
			priorityCommand(e),
			nodesCommand(e),
			nodeCommand(e),
			completionCommand(e),
			loginCommand(e),
		},
		Writer:                    e.stdout,
		ErrWriter:                 e.stderr,
		HideVersion:               true,
		DisableSliceFlagSeparator: true, // -var list=a,b is one value
		// Errors are printed once, by report; urfave must neither print
		// them nor call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("", "unknown command %q", c.Args().First())
			}
			return usagef("", "missing command")
		},
	}
	setUsageErrors(app.Commands)
	return app
}

// setUsageErrors makes flag errors of every command usage errors (exit 2).
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		setUsageErrors(c.Subcommands)
	}
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	return &usageError{cmd: commandPath(c), msg: err.Error()}
}

// commandPath is "submit" or "node drain": the words after "hpcsub".
func commandPath(c *cli.Context) string {
	if c.Command == nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(c.Command.HelpName, "hpcsub"))
}

// usageError is bad usage: exit 2 with a one-line hint.
type usageError struct {
	cmd string // command path, "" for hpcsub itself
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, a ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, a...)}
}

// exitStatus ends the command with a status after it printed what it had
// to say itself (validate, cancel of several jobs, submit --wait).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// report prints err (once) and turns it into the exit status.
func (e *env) report(err error) int {
	if err == nil {
		return 0
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		help := "hpcsub --help"
		prefix := "hpcsub"
		if ue.cmd != "" {
			help = "hpcsub " + ue.cmd + " --help"
			prefix = "hpcsub " + ue.cmd
		}
		fmt.Fprintf(e.stderr, "%s: %s (see '%s')\n", prefix, ue.msg, help)
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		// Only urfave's help command produces these (an unknown help topic).
		fmt.Fprintf(e.stderr, "hpcsub: %s (see 'hpcsub --help')\n", oneLine(ec.Error()))
		return 2
	}
	fmt.Fprintf(e.stderr, "hpcsub: %s\n", oneLine(err.Error()))
	var ae *api.APIError
	if errors.As(err, &ae) {
		for _, d := range ae.Diagnostics {
			fmt.Fprintln(e.stderr, d)
		}
	}
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// client connects to the address from --addr, $HPC_ADDR or the default.
func (e *env) client(c *cli.Context) (*api.Client, error) {
	cl, err := api.NewClient(api.ResolveAddr(c.String("addr")))
	if err != nil {
		return nil, usagef("", "%v", err)
	}
	return cl, nil
}

// request gives one ordinary request its deadline.
func (e *env) request() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, requestTimeout)
}

// explain adds what the user needs to know to errors that the client
// leaves terse: a deadline, an interrupt.
func explain(cl *api.Client, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from hpcd at %s within %v: is it overloaded or stuck?", cl.Addr(), requestTimeout)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	return err
}

// permuteArgs moves the flags of the command being run in front of its
// positional arguments, so that `node drain gpu07 --reason x` and
// `submit job.hcl --wait` work: urfave/cli (like Go's flag package) stops
// at the first positional argument. "--" ends flag parsing as usual. A
// value flag left without its value after a positional argument is a
// usage error here, since moving it would make it swallow that argument.
func permuteArgs(app *cli.App, args []string) ([]string, error) {
	flags := app.Flags
	cmds := app.Commands
	var words []string // command words: "node", "drain"
	out := make([]string, 0, len(args))
	i := 0
	// Walk the global flags and the command words.
	for i < len(args) {
		a := args[i]
		if a == "--" || !isFlag(a) {
			if cmds == nil {
				break
			}
			var cmd *cli.Command
			for _, c := range cmds {
				if c.HasName(a) {
					cmd = c
				}
			}
			if cmd == nil {
				return append(out, args[i:]...), nil
			}
			out = append(out, a)
			words = append(words, a)
			i++
			flags, cmds = cmd.Flags, cmd.Subcommands
			if len(cmds) == 0 {
				cmds = nil
				break
			}
			continue
		}
		n, _ := flagWidth(flags, args[i:])
		out = append(out, args[i:i+n]...)
		i += n
	}
	if cmds != nil {
		return append(out, args[i:]...), nil
	}
	// Leaf command: its flags first, then the positional arguments. A
	// global flag written after the command (`queue --addr X`) moves to
	// the front, where the parser looks for it.
	var globals, pos []string
	for i < len(args) {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			i++
			continue
		}
		target, set := &out, flags
		if hasFlag(app.Flags, a) && !hasFlag(flags, a) {
			target, set = &globals, app.Flags
		}
		n, dangling := flagWidth(set, args[i:])
		// Moved in front, a dangling flag would swallow the next word.
		if dangling && (len(pos) > 0 || target == &globals) {
			return nil, usagef(strings.Join(words, " "), "flag needs an argument: %s", a)
		}
		*target = append(*target, args[i:i+n]...)
		i += n
	}
	return append(append(globals, out...), pos...), nil
}

// hasFlag reports whether arg ("--name", "-name=value") names one of flags.
func hasFlag(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flagWidth is how many words the flag at args[0] takes: 2 for a value
// flag written "--name value", else 1 (booleans, "--name=value", and
// unknown flags, which the parser then reports). dangling reports a
// value flag with nothing after it.
func flagWidth(flags []cli.Flag, args []string) (n int, dangling bool) {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") {
		return 1, false
	}
	for _, f := range flags {
		for _, fn := range f.Names() {
			if fn != name {
				continue
			}
			if _, ok := f.(*cli.BoolFlag); ok {
				return 1, false
			}
			if len(args) < 2 {
				return 1, true
			}
			return 2, false
		}
	}
	return 1, false
}
