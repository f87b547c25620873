package main

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
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
		Usage: "list everyone's pending and running jobs (pending array elements folded: 42_[3-99])",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only jobs of user `U`"},
			&cli.BoolFlag{Name: "me", Usage: "only your own jobs"},
			&cli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "only jobs in state `S` (e.g. PENDING, or PENDING,HELD)"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "include jobs that have just ended (older ones: hpcsub history)"},
			&cli.BoolFlag{Name: "json", Usage: "print the jobs as a JSON array"},
			&cli.BoolFlag{Name: "count", Usage: "print only how many jobs are in each state (cheap on a long queue)"},
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
	if c.Bool("me") {
		if user != "" {
			return usagef("queue", "--me and --user exclude each other")
		}
		if user = currentUser(); user == "" {
			return errors.New("cannot tell who you are (no account for your uid): use --user NAME")
		}
	}
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
	if c.Bool("count") {
		return e.queueCounts(cl, user, query, c.Bool("json")) // counts.go
	}
	// Filter here too: the answer is then right whatever the server
	// supports, and ended jobs stay out of the default view.
	keep := func(u string, st api.JobState) bool {
		switch {
		case user != "" && u != user:
		case state != "" && !states[string(st)]:
		case state == "" && !c.Bool("all") && api.Terminal(st):
		default:
			return true
		}
		return false
	}
	if c.Bool("json") {
		list, err := cl.Jobs(ctx, user, query)
		if err != nil {
			return explain(cl, err)
		}
		shown := make([]api.Job, 0, len(list))
		for _, j := range list {
			if keep(j.User, j.State) {
				shown = append(shown, j)
			}
		}
		sort.Slice(shown, func(a, b int) bool { return shown[a].ID < shown[b].ID })
		return writeJSON(e.stdout, shown)
	}
	// The table needs only the brief form: a fifth of the bytes, and a
	// small struct, so 100,000 jobs decode in a fraction of a second.
	list, err := cl.JobsBrief(ctx, user, query)
	if err != nil {
		return explain(cl, err)
	}
	shown := make([]api.Job, 0, len(list))
	for _, b := range list {
		if keep(b.User, b.State) {
			shown = append(shown, b.Job())
		}
	}
	sort.Slice(shown, func(a, b int) bool { return shown[a].ID < shown[b].ID })
	now := e.now()
	// tabwriter writes every cell on its own: buffer them, or a long queue
	// costs a system call per cell.
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	tw := newTable(out)
	row(tw, "JOBID", "NAME", "USER", "STATE", "TIME", "NODES", "REASON")
	// Elements of an array that wait for the same reason fold into one
	// line, as squeue prints them: 42_[3-99].
	fold := func(j api.Job) string {
		if j.State != api.StatePending && j.State != api.StateHeld {
			return strconv.FormatUint(j.ID, 10) // never folds
		}
		return string(j.State) + "\x00" + pendingReason(j, now)
	}
	for _, g := range foldJobs(shown, fold) {
		j := g.jobs[0]
		row(tw, g.label, dashIfEmpty(j.Name), dashIfEmpty(j.User), string(j.State),
			formatElapsed(elapsed(j, now)), nodeList(j), dashIfEmpty(pendingReason(j, now)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return out.Flush()
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
	if c.NArg() != 1 {
		if _, err := oneJobID("show", c); err != nil {
			return err
		}
	}
	ref, err := jobs.ParseJobRef(c.Args().First())
	if err != nil {
		return usagef("show", "invalid job id %q: want 42, 42_7 or 42_[3-9]", c.Args().First())
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	var j api.Job
	if ref.Indices == nil {
		if j, err = cl.Job(ctx, ref.ID); err != nil {
			return jobError(cl, ref.ID, err)
		}
	}
	if ref.Indices != nil || (j.ArrayIndex != nil && j.ArrayJobID == j.ID && !c.Bool("json")) {
		// An array, or elements of one: show 42 is the whole array. With
		// --json a plain id stays one job object (a contract with
		// scripts); 42_[0-99] lists elements.
		return e.showArray(ctx, cl, c, ref)
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
		kv("array", fmt.Sprintf("%d_%d", j.ArrayJobID, *j.ArrayIndex))
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
