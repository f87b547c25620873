package main

import (
	"context"
	"fmt"
	"maps"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
	"github.com/urfave/cli/v2"
)

// maxIDRange bounds "244-2243", a range of plain job ids.
const maxIDRange = 100000 // sent api.MaxActionTargets a request

// parseTargets checks job arguments before any request: "42", "42_7",
// "42_[3-9]", and "244-2243" (a range of job ids, expanded here).
func parseTargets(cmd string, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if lo, hi, ok := strings.Cut(a, "-"); ok && !strings.Contains(a, "_") {
			l, err1 := strconv.ParseUint(lo, 10, 64)
			h, err2 := strconv.ParseUint(hi, 10, 64)
			if err1 != nil || err2 != nil || l == 0 || h < l || h-l >= maxIDRange {
				return nil, usagef(cmd, "invalid job id range %q: want LOW-HIGH, at most %d ids", a, maxIDRange)
			}
			for id := l; id <= h; id++ {
				out = append(out, strconv.FormatUint(id, 10))
			}
			continue
		}
		ref, err := jobs.ParseJobRef(a)
		if err != nil {
			return nil, usagef(cmd, "invalid job id %q: want 42, 42_7 or 42_[3-9]", a)
		}
		out = append(out, ref.String())
	}
	return out, nil
}

// actionCommand is cancel, hold, release, signal or update: one request
// for all the jobs named, however many.
func actionCommand(e *env, name, usage string) *cli.Command {
	cmd := &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID... (42, 42_7, 42_[3-9], 244-2243)",
		Action: func(c *cli.Context) error {
			return e.action(c, name)
		},
	}
	switch name {
	case api.ActionCancel:
		cmd.Flags = []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "cancel every live job of user `U` (yourself unless you are an admin)"},
			&cli.StringFlag{Name: "state", Aliases: []string{"t"}, Usage: "only jobs in state `S` (e.g. PENDING)"},
			&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Usage: "send signal `SIG` to the running jobs instead of ending them"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		}
	case api.ActionUpdate:
		cmd.Usage = "change a pending job: --walltime, --priority (users may only lower them)"
		cmd.Flags = []cli.Flag{
			&cli.StringFlag{Name: "walltime", Aliases: []string{"time"}, Usage: "new walltime `T` (\"30m\", \"1-02:00:00\")"},
			&cli.IntFlag{Name: "priority", Usage: "new priority `P` (0..1000)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		}
	default:
		cmd.Flags = []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"}}
	}
	return cmd
}

func (e *env) action(c *cli.Context, name string) error {
	req := api.ActionRequest{Action: name}
	if name == api.ActionCancel {
		req.User = c.String("user")
		if s := c.String("state"); s != "" {
			list, _, err := parseStates(name, s)
			if err != nil {
				return err
			}
			req.States = strings.Split(list, ",")
		}
		if sig := c.String("signal"); sig != "" {
			req.Action, req.Signal = api.ActionSignal, sig
		}
	}
	if name == api.ActionUpdate {
		req.Walltime = c.String("walltime")
		if c.IsSet("priority") {
			p := c.Int("priority")
			req.Priority = &p
		}
		if req.Walltime == "" && req.Priority == nil {
			return usagef(name, "nothing to change: give --walltime or --priority")
		}
	}
	if c.NArg() == 0 && req.User == "" {
		if name == api.ActionCancel && len(req.States) > 0 {
			req.User = currentUser()
		} else {
			return usagef(name, "missing job ID")
		}
	}
	targets, err := parseTargets(name, c.Args().Slice())
	if err != nil {
		return err
	}
	req.Targets = targets
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	resp, err := e.actionsInChunks(cl, req)
	if err != nil {
		return explain(cl, err)
	}
	if c.Bool("json") {
		if err := writeJSON(e.stdout, resp.Results); err != nil {
			return err
		}
	}
	failed := false
	for _, r := range resp.Results {
		if r.Error != "" {
			fmt.Fprintf(e.stderr, "hpcsub: %s %s: %s\n", name, r.Target, oneLine(r.Error))
			failed = true
			continue
		}
		if !c.Bool("json") {
			e.printResult(req, r)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// actionsInChunks sends req's targets api.MaxActionTargets at a time (the
// server's bound on one request) and joins the answers.
func (e *env) actionsInChunks(cl *api.Client, req api.ActionRequest) (api.ActionResponse, error) {
	all := req.Targets
	var resp api.ActionResponse
	for {
		req.Targets = all[:min(len(all), api.MaxActionTargets)]
		ctx, cancel := e.request()
		part, err := cl.Actions(ctx, req)
		cancel()
		if err != nil {
			return resp, err
		}
		resp.Results = append(resp.Results, part.Results...)
		if all = all[len(req.Targets):]; len(all) == 0 {
			return resp, nil
		}
	}
}

// printResult prints what became of one target: one line per state,
// array elements folded ("job 42_[3-9] CANCELLED").
func (e *env) printResult(req api.ActionRequest, r api.ActionResult) {
	want := map[string]api.JobState{api.ActionCancel: api.StateCancelled, api.ActionHold: api.StateHeld, api.ActionRelease: api.StatePending}[req.Action]
	defer func() { // jobs the server counted instead of listing
		for _, st := range slices.Sorted(maps.Keys(r.More)) {
			fmt.Fprintf(e.stdout, "%s: %d more jobs %s\n", r.Target, r.More[st], st)
		}
	}()
	if len(r.Jobs) == 0 {
		if len(r.More) == 0 && req.User != "" {
			fmt.Fprintf(e.stdout, "no jobs of %s to %s\n", req.User, req.Action)
		}
		return
	}
	for _, g := range foldJobs(r.Jobs, func(j api.Job) string { return string(j.State) }) {
		switch {
		case req.Action == api.ActionSignal:
			fmt.Fprintf(e.stdout, "job %s signalled (%s)\n", g.label, strings.ToUpper(req.Signal))
		case req.Action == api.ActionUpdate:
			fmt.Fprintf(e.stdout, "job %s updated\n", g.label)
		case g.key == string(want) || want == "":
			fmt.Fprintf(e.stdout, "job %s %s\n", g.label, g.key)
		default:
			// A running job is stopped asynchronously (SIGTERM, grace,
			// SIGKILL): the answer can come before it has ended.
			fmt.Fprintf(e.stdout, "job %s %s (%s requested)\n", g.label, g.key, req.Action)
		}
	}
}

// group is consecutive jobs with one key: a job, or elements of one array.
type group struct {
	label string
	key   string
	jobs  []api.Job
}

// foldJobs groups consecutive elements of one array that share key(j)
// into one labelled group ("42_[3-9]"); other jobs stay alone ("17",
// "42_2").
func foldJobs(list []api.Job, key func(api.Job) string) []group {
	var out []group
	for i := 0; i < len(list); {
		j := list[i]
		k := i + 1
		if j.ArrayIndex != nil {
			for k < len(list) && list[k].ArrayIndex != nil && list[k].ArrayJobID == j.ArrayJobID && key(list[k]) == key(j) {
				k++
			}
		}
		g := group{key: key(j), jobs: list[i:k]}
		g.label = jobLabel(j)
		if k-i > 1 {
			idx := make([]int, 0, k-i)
			for _, m := range list[i:k] {
				idx = append(idx, *m.ArrayIndex)
			}
			g.label = fmt.Sprintf("%d_[%s]", j.ArrayJobID, jobs.FormatIndices(idx))
		}
		out = append(out, g)
		i = k
	}
	return out
}

// jobLabel names a job as users write it: 17, or 42_7 for an array element.
func jobLabel(j api.Job) string {
	if j.ArrayIndex != nil {
		return fmt.Sprintf("%d_%d", j.ArrayJobID, *j.ArrayIndex)
	}
	return strconv.FormatUint(j.ID, 10)
}

// currentUser is the name of the user running hpcsub.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// showArray prints an array, or some of its elements: one element in
// full, several as a summary and folded lines.
func (e *env) showArray(ctx context.Context, cl *api.Client, c *cli.Context, ref jobs.JobRef) error {
	all, err := cl.ArrayJobs(ctx, ref.ID)
	if err != nil {
		return about(cl, "array "+strconv.FormatUint(ref.ID, 10), err)
	}
	sort.Slice(all, func(a, b int) bool { return *all[a].ArrayIndex < *all[b].ArrayIndex })
	list := all
	if ref.Indices != nil {
		list = nil
		for _, j := range all {
			if slices.Contains(ref.Indices, *j.ArrayIndex) {
				list = append(list, j)
			}
		}
	}
	if len(list) == 0 {
		return fmt.Errorf("job %s: no such array element (see `hpcsub show %d`)", ref, ref.ID)
	}
	if len(list) == 1 && len(ref.Indices) == 1 {
		if c.Bool("json") {
			return writeJSON(e.stdout, list[0])
		}
		j, err := cl.Job(ctx, list[0].ID) // with its history
		if err != nil {
			return jobError(cl, list[0].ID, err)
		}
		return e.printJob(j)
	}
	if c.Bool("json") {
		return writeJSON(e.stdout, list)
	}
	counts := map[api.JobState]int{}
	for _, j := range list {
		counts[j.State]++
	}
	var states []string
	for _, st := range allStates {
		if counts[api.JobState(st)] > 0 {
			states = append(states, fmt.Sprintf("%d %s", counts[api.JobState(st)], st))
		}
	}
	first := list[0]
	tw := newTable(e.stdout)
	row(tw, "array:", fmt.Sprintf("%s (%d elements)", ref, len(list)))
	row(tw, "name:", first.Name)
	row(tw, "user:", fmt.Sprintf("%s (uid %d)", first.User, first.UID))
	row(tw, "states:", strings.Join(states, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	now := e.now()
	tw = newTable(e.stdout)
	row(tw, "JOBID", "STATE", "TIME", "NODES", "EXIT", "REASON")
	for _, g := range foldJobs(list, func(j api.Job) string { return string(j.State) + "\x00" + pendingReason(j, now) + "\x00" + exitText(j) }) {
		j := g.jobs[0]
		row(tw, g.label, string(j.State), formatElapsed(elapsed(j, now)), nodeList(j), exitText(j), dashIfEmpty(pendingReason(j, now)))
	}
	return tw.Flush()
}

func exitText(j api.Job) string {
	switch {
	case j.Signal != "":
		return j.Signal
	case j.ExitCode != nil:
		return strconv.Itoa(*j.ExitCode)
	}
	return "-"
}

// oneJob fetches the job an argument names: "42", or "42_7", one element
// of array 42 (found among the array's elements).
func (e *env) oneJob(ctx context.Context, cl *api.Client, cmd, arg string) (api.Job, error) {
	ref, err := jobs.ParseJobRef(arg)
	if err != nil || len(ref.Indices) > 1 {
		return api.Job{}, usagef(cmd, "invalid job id %q: want 42 or 42_7", arg)
	}
	if ref.Indices == nil {
		j, err := cl.Job(ctx, ref.ID)
		if err != nil {
			return j, jobError(cl, ref.ID, err)
		}
		return j, nil
	}
	all, err := cl.ArrayJobs(ctx, ref.ID)
	if err != nil {
		return api.Job{}, about(cl, "array "+strconv.FormatUint(ref.ID, 10), err)
	}
	for _, j := range all {
		if j.ArrayIndex != nil && *j.ArrayIndex == ref.Indices[0] {
			return j, nil
		}
	}
	return api.Job{}, fmt.Errorf("job %s: no such array element (see `hpcsub show %d`)", arg, ref.ID)
}
