package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/api"
)

// maxHistoryJobs bounds `hpcsub history --jobs`: one request per job.
const maxHistoryJobs = 1000

// sacctStates are the short state names sacct and squeue print and
// accept (`sacct -s CD,F`), for the end states history knows.
var sacctStates = map[string]api.JobState{
	"CD": api.StateCompleted, "F": api.StateFailed, "TO": api.StateTimeout,
	"OOM": api.StateOutOfMemory, "CA": api.StateCancelled, "NF": api.StateNodeFail,
	"CANCELED": api.StateCancelled, // Slurm's own spelling in some outputs
}

// historyState reads one --state item of history: a full end state in
// any case, or sacct's short name.
func historyState(s string) api.JobState {
	up := strings.ToUpper(strings.TrimSpace(s))
	if st, ok := sacctStates[up]; ok {
		return st
	}
	return api.JobState(up)
}

// parseJobIDs reads --jobs: "42", "42,43", "40-49" (sacct -j takes
// comma-separated ids), at most maxHistoryJobs ids.
func parseJobIDs(cmd, s string) ([]uint64, error) {
	var ids []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 64)
		h, err2 := strconv.ParseUint(hi, 10, 64)
		if err1 != nil || err2 != nil || l == 0 || h < l {
			return nil, usagef(cmd, "invalid job id %q in --jobs: want 42, 42,43 or 40-49", part)
		}
		if h-l >= maxHistoryJobs || len(ids)+int(h-l+1) > maxHistoryJobs {
			return nil, usagef(cmd, "--jobs names more than %d jobs: narrow it, or use --since/--until", maxHistoryJobs)
		}
		for id := l; id <= h; id++ {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, usagef(cmd, "--jobs needs at least one job id")
	}
	return ids, nil
}

// historyOfJobs is `hpcsub history --jobs IDS` (sacct -j): the named jobs
// whenever they ended, live ones too with their current state and runs
// so far, filtered by --user, --account and --state when given, at most
// q.Limit of them (0: all). A job
// that does not exist or is another user's is said so on stderr, and the
// exit is 1, after the others are printed.
func (e *env) historyOfJobs(c *cli.Context, ids []uint64, q api.HistoryQuery, windowed bool, asJSON bool) error {
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	states := map[api.JobState]bool{}
	for _, s := range q.States {
		states[s] = true
	}
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	tw := beginHistory(out, asJSON)
	var failed []error
	shown := 0
	for _, id := range ids {
		if q.Limit > 0 && shown >= q.Limit {
			break
		}
		ctx, cancel := e.request()
		j, err := cl.Job(ctx, id)
		cancel()
		switch {
		case err != nil:
			failed = append(failed, jobError(cl, id, err))
			continue
		case j.Private:
			failed = append(failed, fmt.Errorf("job %d belongs to another user (%s): its accounting is private", id, j.User))
			continue
		case q.User != "" && j.User != q.User, q.Account != "" && j.Account != q.Account,
			len(states) > 0 && !states[j.State]:
			continue
		case windowed && (j.EndTime == nil || j.EndTime.Before(q.Since) || (!q.Until.IsZero() && !j.EndTime.Before(q.Until))):
			continue
		}
		if asJSON {
			if shown > 0 {
				io.WriteString(out, ",")
			}
			if err := writeJSON(out, j); err != nil {
				return err
			}
		} else {
			historyRow(tw, jobHistoryRow(j))
		}
		shown++
	}
	if err := endHistory(out, tw, asJSON); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	return errors.Join(failed...)
}

// jobHistoryRow is a job's line of history from its whole record (a live
// job's runs so far).
func jobHistoryRow(j api.Job) api.HistoryRow {
	r := api.HistoryRow{ID: j.ID, User: j.User, Account: j.Account, State: j.State, Name: j.Name,
		ExitCode: j.ExitCode, Signal: j.Signal, Runs: len(j.Runs)}
	if j.EndTime != nil {
		r.EndTime = *j.EndTime
	}
	u := api.TotalUsage(j.Runs)
	r.ElapsedSeconds, r.CPUSeconds, r.PeakMemory, r.GPUSeconds = u.ElapsedSeconds, u.CPUSeconds, u.PeakMemory, u.GPUSeconds
	for _, run := range j.Runs {
		r.AllocCPUSecs += float64(run.CPUs) * run.Usage.ElapsedSeconds
	}
	return r
}

// usageFilters names usage's --user and --account in its header line.
func usageFilters(c *cli.Context) string {
	var f string
	if u := c.String("user"); u != "" {
		f += ", user " + u
	}
	if a := c.String("account"); a != "" {
		f += ", account " + a
	}
	return f
}
