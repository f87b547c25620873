package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
	"github.com/hpc-sched/hpc/resources"
)

// The accounting commands (sacct, sreport and seff of Slurm): history,
// usage and eff read the server's accounting archive.

func historyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list jobs that have ended (default: in the last day), filtered on the server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only jobs of user `U` (admins; others see their own)"},
			&cli.StringFlag{Name: "account", Aliases: []string{"A"}, Usage: "only jobs charged to account `A`"},
			&cli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "only jobs that ended in state `S` (comma-separated: COMPLETED,FAILED,...)"},
			&cli.StringFlag{Name: "since", Aliases: []string{"S"}, Usage: "only jobs that ended after `T`: a duration ago (24h, 7d) or a date (2006-01-02, RFC 3339); default 1d"},
			&cli.StringFlag{Name: "until", Aliases: []string{"E"}, Usage: "only jobs that ended before `T` (same forms as --since)"},
			&cli.StringFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "only the jobs `IDS` (42,43 or 40-49), whenever they ended, running ones too (sacct -j)"},
			&cli.IntFlag{Name: "limit", Usage: "print at most `N` jobs (0: all)"},
			&cli.BoolFlag{Name: "json", Usage: "print the jobs as a JSON array"},
		},
		Action: e.history,
	}
}

// period reads --since (default a day ago) and --until.
func (e *env) period(c *cli.Context, cmd string) (since, until time.Time, err error) {
	now := e.now()
	since = now.Add(-24 * time.Hour)
	if s := c.String("since"); s != "" {
		if since, err = parseSince(s, now); err != nil {
			return since, until, usagef(cmd, "%v", err)
		}
	}
	if s := c.String("until"); s != "" {
		if until, err = parseSince(s, now); err != nil {
			return since, until, usagef(cmd, "%v", strings.Replace(err.Error(), "--since", "--until", 1))
		}
		if !until.After(since) {
			return since, until, usagef(cmd, "--until %s is not after --since (%s)", s, since.Format(time.RFC3339))
		}
	}
	return since, until, nil
}

func (e *env) history(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("history", "unexpected argument %q", c.Args().First())
	}
	since, until, err := e.period(c, "history")
	if err != nil {
		return err
	}
	limit := c.Int("limit")
	if limit < 0 {
		return usagef("history", "--limit must be 0 (all) or more")
	}
	q := api.HistoryQuery{User: c.String("user"), Account: c.String("account"), Since: since, Until: until}
	for _, s := range strings.Split(c.String("state"), ",") {
		if st := historyState(s); st != "" {
			if !api.Terminal(st) {
				return usagef("history", "state %s is not an end state: use COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED or NODE_FAIL (or CD, F, TO, OOM, CA, NF)", st)
			}
			q.States = append(q.States, st)
		}
	}
	if c.IsSet("jobs") {
		ids, err := parseJobIDs("history", c.String("jobs"))
		if err != nil {
			return err
		}
		// sacct -j looks at all time unless a window is asked for.
		q.Limit = limit
		return e.historyOfJobs(c, ids, q, c.IsSet("since") || c.IsSet("until"), c.Bool("json"))
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	asJSON := c.Bool("json")
	// The table needs only what the archive's index holds: brief rows.
	q.Brief = !asJSON
	// The table writes cell by cell: buffered, a long listing is a few
	// writes instead of one per cell.
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	tw := beginHistory(out, asJSON)
	shown := 0
	for {
		q.Limit = 10000 // the most a page may hold: fewer round trips
		if limit > 0 {
			q.Limit = min(limit-shown, q.Limit)
		}
		ctx, cancel := e.request()
		page, err := cl.History(ctx, q)
		cancel()
		if err != nil {
			return explain(cl, err)
		}
		for _, j := range page.Jobs {
			if shown > 0 {
				io.WriteString(out, ",")
			}
			if err := writeJSON(out, j); err != nil {
				return err
			}
			shown++
		}
		if page.TSV != "" {
			rows, err := api.ParseHistoryTSV(page.TSV)
			if err != nil {
				return fmt.Errorf("the server's history answer: %w", err)
			}
			for _, r := range rows {
				historyRow(tw, r)
				shown++
			}
		}
		if page.Next == "" || (limit > 0 && shown >= limit) {
			break
		}
		q.After = page.Next
	}
	if err := endHistory(out, tw, asJSON); err != nil {
		return err
	}
	return out.Flush()
}

func historyRow(w io.Writer, r api.HistoryRow) {
	exit := "-"
	if r.ExitCode != nil {
		exit = strconv.Itoa(*r.ExitCode)
	}
	if r.Signal != "" {
		exit += "(" + r.Signal + ")"
	}
	maxMem := "-"
	if r.PeakMemory > 0 {
		maxMem = resources.FormatBytes(r.PeakMemory)
	}
	row(w, strconv.FormatUint(r.ID, 10), dashIfEmpty(r.Name), dashIfEmpty(r.User), dashIfEmpty(r.Account),
		string(r.State), exit, strconv.Itoa(r.Runs), formatSeconds(r.ElapsedSeconds), formatSeconds(r.CPUSeconds), maxMem, formatTime(&r.EndTime))
}

func usageCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "sum the CPU-hours and GPU-hours of jobs that ended (default: in the last day) by account or user",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Value: "account", Usage: "group by `account` or user"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only jobs of user `U` (admins; others see their own)"},
			&cli.StringFlag{Name: "account", Aliases: []string{"A"}, Usage: "only jobs charged to account `A` (with --by user: who used it)"},
			&cli.StringFlag{Name: "since", Aliases: []string{"S"}, Usage: "jobs that ended after `T`: a duration ago (24h, 7d) or a date; default 1d"},
			&cli.StringFlag{Name: "until", Aliases: []string{"E"}, Usage: "jobs that ended before `T`"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: e.usage,
	}
}

func (e *env) usage(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("usage", "unexpected argument %q", c.Args().First())
	}
	by := c.String("by")
	if by != "account" && by != "user" {
		return usagef("usage", "--by must be account or user, not %q", by)
	}
	since, until, err := e.period(c, "usage")
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	rep, err := cl.UsageOf(ctx, api.UsageQuery{By: by, User: c.String("user"), Account: c.String("account"), Since: since, Until: until})
	if err != nil {
		return explain(cl, err)
	}
	if c.Bool("json") {
		return writeJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "usage by %s, jobs that ended %s .. %s%s\n", rep.By, formatTime(&rep.Since), formatTime(&rep.Until), usageFilters(c))
	tw := newTable(e.stdout)
	row(tw, strings.ToUpper(rep.By), "JOBS", "RUNS", "CPU-HOURS", "ALLOC-CPU-HOURS", "GPU-HOURS")
	var total api.UsageRow
	for _, r := range rep.Rows {
		row(tw, r.Key, strconv.Itoa(r.Jobs), strconv.Itoa(r.Runs), hours(r.CPUHours), hours(r.AllocCPUHours), hours(r.GPUHours))
		total.Jobs += r.Jobs
		total.Runs += r.Runs
		total.CPUHours += r.CPUHours
		total.AllocCPUHours += r.AllocCPUHours
		total.GPUHours += r.GPUHours
	}
	row(tw, "TOTAL", strconv.Itoa(total.Jobs), strconv.Itoa(total.Runs), hours(total.CPUHours), hours(total.AllocCPUHours), hours(total.GPUHours))
	return tw.Flush()
}

func hours(h float64) string { return strconv.FormatFloat(h, 'f', 2, 64) }

func effCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "eff",
		Usage:     "show how well a job used what it asked for: CPU, memory, GPU-hours and walltime, over all its runs",
		ArgsUsage: "ID (42, or 42_7: an array element)",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the figures as JSON"}},
		Action:    e.eff,
	}
}

// efficiency is what `hpcsub eff` reports, as seff does.
type efficiency struct {
	JobID          uint64       `json:"job_id"`
	State          api.JobState `json:"state"`
	Runs           int          `json:"runs"`
	CPUs           int          `json:"cpus"` // allocated, over all nodes
	CPUSeconds     float64      `json:"cpu_s"`
	CoreWallSecs   float64      `json:"core_wall_s"` // allocated CPUs times elapsed, over runs
	CPUEfficiency  float64      `json:"cpu_efficiency"`
	PeakMemory     int64        `json:"peak_memory"`
	MemoryAsked    int64        `json:"memory_asked"` // per node
	MemEfficiency  float64      `json:"memory_efficiency"`
	GPUHours       float64      `json:"gpu_hours"`
	ElapsedSeconds float64      `json:"elapsed_s"` // over all runs
	LongestRun     float64      `json:"longest_run_s"`
	WalltimeSec    int64        `json:"walltime_s"`
	WalltimeUsed   float64      `json:"walltime_used"` // longest run / walltime
	// GPU is what NVML measured of the job's GPUs over all runs; absent
	// when nothing was measured (no NVML on its nodes).
	GPU *api.GPUSummary `json:"gpu,omitempty"`
}

func jobEfficiency(j api.Job) efficiency {
	ef := efficiency{JobID: j.ID, State: j.State, Runs: len(j.Runs), MemoryAsked: j.Memory, WalltimeSec: j.WalltimeSec}
	u := api.TotalUsage(j.Runs)
	if len(j.Runs) == 0 && j.Usage != nil {
		u = *j.Usage
	}
	ef.CPUSeconds, ef.PeakMemory, ef.ElapsedSeconds, ef.GPUHours = u.CPUSeconds, u.PeakMemory, u.ElapsedSeconds, u.GPUSeconds/3600
	for _, r := range j.Runs {
		ef.CPUs = max(ef.CPUs, r.CPUs)
		ef.CoreWallSecs += float64(r.CPUs) * r.Usage.ElapsedSeconds
		ef.LongestRun = max(ef.LongestRun, r.Usage.ElapsedSeconds)
	}
	if ef.CoreWallSecs > 0 {
		ef.CPUEfficiency = ef.CPUSeconds / ef.CoreWallSecs
	}
	if ef.MemoryAsked > 0 {
		ef.MemEfficiency = float64(ef.PeakMemory) / float64(ef.MemoryAsked)
	}
	if ef.WalltimeSec > 0 {
		ef.WalltimeUsed = ef.LongestRun / float64(ef.WalltimeSec)
	}
	ef.GPU = api.SummarizeGPUUsage(j.Runs)
	return ef
}

func (e *env) eff(c *cli.Context) error {
	if c.NArg() != 1 {
		if c.NArg() == 0 {
			return usagef("eff", "missing job ID")
		}
		return usagef("eff", "one job ID at a time")
	}
	if _, err := jobs.ParseJobRef(c.Args().First()); err != nil {
		return usagef("eff", "invalid job id %q: want 42 or 42_7", c.Args().First())
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	// 42_7 is one element of array 42, as seff takes it.
	j, err := e.oneJob(ctx, cl, "eff", c.Args().First())
	if err != nil {
		return err
	}
	if j.Private {
		return fmt.Errorf("job %d belongs to another user (%s): its usage is private", j.ID, j.User)
	}
	ef := jobEfficiency(j)
	if c.Bool("json") {
		return writeJSON(e.stdout, ef)
	}
	pct := func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }
	tw := newTable(e.stdout)
	kv := func(k, v string) { row(tw, k+":", v) }
	kv("job", strconv.FormatUint(j.ID, 10)+" ("+dashIfEmpty(jobName(j))+")")
	kv("user/account", j.User+"/"+j.Account)
	kv("state", string(j.State))
	kv("runs", strconv.Itoa(ef.Runs))
	if ef.Runs == 0 {
		// Usage is measured when a run ends: zeros here would read as an
		// idle job (seff warns likewise for running jobs).
		kv("note", "no run has ended yet: efficiency is known once one does")
		noRunYet(kv, j, e.now())
		return tw.Flush()
	}
	kv("cores", coresLine(ef.CPUs, j.Runs))
	kv("cpu utilized", formatSeconds(ef.CPUSeconds))
	kv("cpu efficiency", pct(ef.CPUEfficiency)+" of "+formatSeconds(ef.CoreWallSecs)+" core-walltime")
	kv("memory utilized", resources.FormatBytes(ef.PeakMemory)+" (peak of any node and run)")
	kv("memory efficiency", pct(ef.MemEfficiency)+" of "+resources.FormatBytes(ef.MemoryAsked)+" per node")
	kv("gpu-hours", strconv.FormatFloat(ef.GPUHours, 'f', 3, 64))
	if ef.GPUHours > 0 || ef.GPU != nil {
		util, mem := gpuEfficiencyLines(ef.GPU)
		kv("gpu utilisation", util)
		kv("gpu memory", mem)
	}
	kv("wall-clock", formatSeconds(ef.ElapsedSeconds)+" over all runs")
	kv("walltime used", pct(ef.WalltimeUsed)+" of "+dashIfEmpty(j.Walltime)+" (longest run)")
	for _, r := range j.Runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		kv(fmt.Sprintf("run %d", r.Index), fmt.Sprintf("%s exit %s on %s, %s, cpu %s, peak %s, gpu %s: %s",
			r.State, exit, strings.Join(r.Nodes, ","), formatSeconds(r.Usage.ElapsedSeconds), formatSeconds(r.Usage.CPUSeconds),
			resources.FormatBytes(r.Usage.PeakMemory), formatSeconds(r.Usage.GPUSeconds), dashIfEmpty(r.Cause)))
		for _, g := range r.GPUUsage {
			kv(fmt.Sprintf("run %d gpu %s:%d", r.Index, g.Node, g.Index), gpuRunLine(g))
		}
	}
	return tw.Flush()
}
