package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/urfave/cli/v2"
)

// followPoll is how often `logs -f` looks for new output; every
// followJobEvery-th poll it also asks whether the job has ended.
const (
	followPoll     = 500 * time.Millisecond
	followJobEvery = 4
)

func logsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a job's output file (read from the shared filesystem)",
		ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until the job ends"},
			&cli.BoolFlag{Name: "error", Aliases: []string{"e"}, Usage: "the job's error file instead of its output file"},
		},
		Action: e.logs,
	}
}

func (e *env) logs(c *cli.Context) error {
	id, err := oneJobID("logs", c)
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	j, err := cl.Job(ctx, id)
	cancel()
	if err != nil {
		return jobError(cl, id, err)
	}
	path := j.Output
	if c.Bool("error") {
		path = j.Error
	}
	if path == "" {
		return fmt.Errorf("job %d has no file recorded for this stream", id)
	}
	if !filepath.IsAbs(path) && j.Workdir != "" {
		path = filepath.Join(j.Workdir, path)
	}
	if !c.Bool("follow") {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("job %d (%s) has no output yet: %s does not exist", id, j.State, path)
		}
		if err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		defer f.Close()
		if _, err := io.Copy(e.stdout, f); err != nil {
			return fmt.Errorf("job %d: reading %s: %w", id, path, err)
		}
		return nil
	}
	return e.follow(cl, j, path)
}

// follow prints path as it grows until the job is terminal. The file may
// not exist yet while the job is pending.
func (e *env) follow(cl *api.Client, j api.Job, path string) error {
	var off int64
	done := api.Terminal(j.State)
	for tick := 1; ; tick++ {
		n, err := copyFrom(e.stdout, path, off)
		off += n
		if err != nil {
			return fmt.Errorf("job %d: %w", j.ID, err)
		}
		if done {
			return nil
		}
		select {
		case <-e.ctx.Done():
			return nil // the user stopped following; the job goes on
		case <-time.After(followPoll):
		}
		if tick%followJobEvery == 0 {
			ctx, cancel := e.request()
			cur, err := cl.Job(ctx, j.ID)
			cancel()
			if err != nil {
				return jobError(cl, j.ID, err)
			}
			// One more read after the end picks up the last lines.
			done = api.Terminal(cur.State)
		}
	}
}

// copyFrom copies path from offset off to w; a missing file is no error.
func copyFrom(w io.Writer, path string, off int64) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("reading %s: %w", path, err)
	}
	return n, nil
}

func historyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list jobs that have ended",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only jobs of user `U`"},
			&cli.StringFlag{Name: "account", Aliases: []string{"A"}, Usage: "only jobs charged to account `A`"},
			&cli.StringFlag{Name: "since", Usage: "only jobs that ended after `T`: a duration ago (24h, 7d) or a date (2006-01-02, RFC 3339)"},
			&cli.BoolFlag{Name: "json", Usage: "print the jobs as a JSON array"},
		},
		Action: e.history,
	}
}

func (e *env) history(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("history", "unexpected argument %q", c.Args().First())
	}
	now := e.now()
	var since time.Time
	if s := c.String("since"); s != "" {
		t, err := parseSince(s, now)
		if err != nil {
			return usagef("history", "%v", err)
		}
		since = t
	}
	user, account := c.String("user"), c.String("account")
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	list, err := cl.Jobs(ctx, user, "")
	if err != nil {
		return explain(cl, err)
	}
	shown := make([]api.Job, 0, len(list))
	for _, j := range list {
		switch {
		case !api.Terminal(j.State):
		case user != "" && j.User != user:
		case account != "" && j.Account != account:
		case !since.IsZero() && (j.EndTime == nil || j.EndTime.Before(since)):
		default:
			shown = append(shown, j)
		}
	}
	sort.Slice(shown, func(a, b int) bool { return shown[a].ID < shown[b].ID })
	if c.Bool("json") {
		return writeJSON(e.stdout, shown)
	}
	tw := newTable(e.stdout)
	row(tw, "JOBID", "NAME", "USER", "ACCOUNT", "STATE", "EXIT", "ELAPSED", "END")
	for _, j := range shown {
		exit := "-"
		if j.ExitCode != nil {
			exit = strconv.Itoa(*j.ExitCode)
		}
		row(tw, strconv.FormatUint(j.ID, 10), dashIfEmpty(jobName(j)), dashIfEmpty(j.User), dashIfEmpty(j.Account),
			string(j.State), exit, formatElapsed(elapsed(j, now)), formatTime(j.EndTime))
	}
	return tw.Flush()
}

// parseSince reads --since: "7d", a Go duration, or a date/time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid --since %q: want a duration ago (24h, 7d) or a date (2006-01-02)", s)
}
