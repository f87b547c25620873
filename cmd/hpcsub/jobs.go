package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources"
	"github.com/urfave/cli/v2"
)

var allStates = []string{
	string(api.StatePending), string(api.StateHeld), string(api.StateRunning), string(api.StateCheckpointing), string(api.StateRequeued),
	string(api.StateCompleted), string(api.StateFailed), string(api.StateTimeout), string(api.StateOutOfMemory), string(api.StateCancelled), string(api.StateNodeFail),
}

// parseStates reads --state: one state or a comma-separated list, in any
// case; it returns the list upper-cased and as a set.
func parseStates(cmd, s string) (string, map[string]bool, error) {
	if s == "" {
		return "", nil, nil
	}
	set := map[string]bool{}
	var names []string
	for _, part := range strings.Split(s, ",") {
		up := strings.ToUpper(strings.TrimSpace(part))
		if !slices.Contains(allStates, up) {
			return "", nil, usagef(cmd, "unknown state %q: want one of %s", part, strings.Join(allStates, ", "))
		}
		if !set[up] {
			set[up] = true
			names = append(names, up)
		}
	}
	return strings.Join(names, ","), set, nil
}

func queueCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "list pending and running jobs",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only jobs of user `U`"},
			&cli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "only jobs in state `S` (e.g. PENDING, or PENDING,HELD)"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include jobs that have just ended (older ones: hpcsub history)"},
			&cli.BoolFlag{Name: "json", Usage: "print the jobs as a JSON array"},
		},
		Action: e.queue,
	}
}

func (e *env) queue(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("queue", "unexpected argument %q", c.Args().First())
	}
	state, states, err := parseStates("queue", c.String("state"))
	if err != nil {
		return err
	}
	user := c.String("user")
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	query := state
	if query == "" && !c.Bool("all") {
		// Ask only for live jobs: the server keeps every finished one.
		query = strings.Join(allStates[:5], ",") // the live ones
	}
	list, err := cl.Jobs(ctx, user, query)
	if err != nil {
		return explain(cl, err)
	}
	// Filter here too: the answer is then right whatever the server
	// supports, and ended jobs stay out of the default view.
	shown := make([]api.Job, 0, len(list))
	for _, j := range list {
		switch {
		case user != "" && j.User != user:
		case state != "" && !states[string(j.State)]:
		case state == "" && !c.Bool("all") && api.Terminal(j.State):
		default:
			shown = append(shown, j)
		}
	}
	sort.Slice(shown, func(a, b int) bool { return shown[a].ID < shown[b].ID })
	if c.Bool("json") {
		return writeJSON(e.stdout, shown)
	}
	now := e.now()
	tw := newTable(e.stdout)
	row(tw, "JOBID", "NAME", "USER", "STATE", "TIME", "NODES", "REASON")
	for _, j := range shown {
		row(tw, strconv.FormatUint(j.ID, 10), dashIfEmpty(jobName(j)), dashIfEmpty(j.User), string(j.State),
			formatElapsed(elapsed(j, now)), nodeList(j), dashIfEmpty(pendingReason(j, now)))
	}
	return tw.Flush()
}

func showCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show everything about one job",
		ArgsUsage: "ID",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the job as JSON"}},
		Action:    e.show,
	}
}

func (e *env) show(c *cli.Context) error {
	id, err := oneJobID("show", c)
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	j, err := cl.Job(ctx, id)
	if err != nil {
		return jobError(cl, id, err)
	}
	if c.Bool("json") {
		return writeJSON(e.stdout, j)
	}
	return e.printJob(j)
}

// jobError names the job in a failed request about it, unless the server
// could not be reached at all (that message stands on its own).
func jobError(cl *api.Client, id uint64, err error) error {
	return about(cl, fmt.Sprintf("job %d", id), err)
}

// about prefixes a refusal with what it was about ("job 42", "node gpu07");
// "no daemon" needs no subject.
func about(cl *api.Client, what string, err error) error {
	var ue *api.UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s: %w", what, explain(cl, err))
}

func (e *env) printJob(j api.Job) error {
	tw := newTable(e.stdout)
	kv := func(k, v string) { row(tw, k+":", v) }
	kv("id", strconv.FormatUint(j.ID, 10))
	kv("name", j.Name)
	if j.ArrayIndex != nil {
		kv("array", fmt.Sprintf("%d[%d]", j.ArrayJobID, *j.ArrayIndex))
	}
	kv("user", fmt.Sprintf("%s (uid %d)", j.User, j.UID))
	kv("account", dashIfEmpty(j.Account))
	kv("priority", strconv.Itoa(j.Priority))
	kv("state", string(j.State))
	kv("reason", dashIfEmpty(pendingReason(j, e.now())))
	exit := "-"
	if j.ExitCode != nil {
		exit = strconv.Itoa(*j.ExitCode)
	}
	if j.Signal != "" {
		exit += " (" + j.Signal + ")"
	}
	kv("exit code", exit)
	kv("nodes", fmt.Sprintf("%s (%d wanted)", dashIfEmpty(strings.Join(j.Nodes, ",")), j.NodesWanted))
	kv("gpus", fmt.Sprintf("%d per node; allocated %s", j.GPUsPerNode, dashIfEmpty(gpuList(j.GPUs))))
	kv("cpus", fmt.Sprintf("%d per node", j.CPUs))
	kv("memory", resources.FormatBytes(j.Memory)+" per node")
	if len(j.Features) > 0 {
		kv("features", strings.Join(j.Features, ","))
	}
	kv("walltime", dashIfEmpty(j.Walltime))
	kv("submitted", formatTime(&j.SubmitTime))
	if j.ReservedStart != nil {
		kv("reserved start", formatTime(j.ReservedStart))
	}
	kv("started", formatTime(j.StartTime))
	kv("ended", formatTime(j.EndTime))
	kv("elapsed", formatElapsed(elapsed(j, e.now())))
	kv("restarts", strconv.Itoa(j.Restarts))
	kv("workdir", dashIfEmpty(j.Workdir))
	kv("output", dashIfEmpty(j.Output))
	kv("error", dashIfEmpty(j.Error))
	if u := j.Usage; u != nil {
		kv("usage", fmt.Sprintf("elapsed %s, cpu %s, peak memory %s, gpu %s",
			formatSeconds(u.ElapsedSeconds), formatSeconds(u.CPUSeconds),
			resources.FormatBytes(u.PeakMemory), formatSeconds(u.GPUSeconds)))
	} else {
		kv("usage", "-")
	}
	if len(j.History) > 0 {
		kv("history", "")
		for _, t := range j.History {
			line := formatTime(&t.Time) + "  " + string(t.State)
			if t.Reason != "" {
				line += "  " + t.Reason
			}
			row(tw, "", line)
		}
	}
	printRuns(tw, j)
	return tw.Flush()
}

// formatSeconds prints a usage figure as elapsed time (M:SS, H:MM:SS...).
func formatSeconds(s float64) string {
	return formatElapsed(secondsToDuration(s))
}

// jobAction is one of cancel, hold and release.
type jobAction struct {
	name  string
	usage string
	want  api.JobState // the job's state once the action has taken effect
	do    func(*api.Client, context.Context, uint64) (api.Job, error)
}

var (
	cancelAction  = jobAction{"cancel", "cancel jobs: pending ones never start, running ones are killed", api.StateCancelled, (*api.Client).Cancel}
	holdAction    = jobAction{"hold", "keep pending jobs from starting until released", api.StateHeld, (*api.Client).Hold}
	releaseAction = jobAction{"release", "let held jobs be scheduled again", api.StatePending, (*api.Client).Release}
)

func jobActionCommand(e *env, a jobAction) *cli.Command {
	return &cli.Command{
		Name:      a.name,
		Usage:     a.usage,
		ArgsUsage: "ID...",
		Action: func(c *cli.Context) error {
			ids, err := parseIDs(a.name, c.Args().Slice())
			if err != nil {
				return err
			}
			cl, err := e.client(c)
			if err != nil {
				return err
			}
			return e.applyAction(cl, a, ids)
		},
	}
}

// applyAction applies a to each job: one line per job on stdout, one per
// failure on stderr, exit 1 if any failed. With no server at all it stops
// at the first job with the one line that says so.
func (e *env) applyAction(cl *api.Client, a jobAction, ids []uint64) error {
	failed := false
	for _, id := range ids {
		ctx, cancel := e.request()
		j, err := a.do(cl, ctx, id)
		cancel()
		if err != nil {
			var ue *api.UnavailableError
			if errors.As(err, &ue) || errors.Is(err, context.Canceled) {
				return explain(cl, err)
			}
			fmt.Fprintf(e.stderr, "hpcsub: %s %d: %s\n", a.name, id, oneLine(explain(cl, err).Error()))
			failed = true
			continue
		}
		switch j.State {
		case a.want:
			fmt.Fprintf(e.stdout, "job %d %s\n", id, j.State)
		case "": // a server that acknowledges without the job
			fmt.Fprintf(e.stdout, "job %d %s requested\n", id, a.name)
		default:
			// A running job is killed asynchronously: the answer can come
			// before the job has ended.
			fmt.Fprintf(e.stdout, "job %d %s (%s requested)\n", id, j.State, a.name)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// oneJobID reads the single job ID that cmd takes.
func oneJobID(cmd string, c *cli.Context) (uint64, error) {
	switch {
	case c.NArg() == 0:
		return 0, usagef(cmd, "missing job ID")
	case c.NArg() > 1:
		return 0, usagef(cmd, "one job ID at a time, got %d", c.NArg())
	}
	return parseID(cmd, c.Args().First())
}
