package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
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
		ArgsUsage: "ID (42, or 42_7 for an array element)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until the job ends"},
			&cli.BoolFlag{Name: "error", Aliases: []string{"e"}, Usage: "the job's error file instead of its output file"},
		},
		Action: e.logs,
	}
}

func (e *env) logs(c *cli.Context) error {
	if c.NArg() != 1 {
		if _, err := oneJobID("logs", c); err != nil {
			return err
		}
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	j, err := e.oneJob(ctx, cl, "logs", c.Args().First())
	cancel()
	if err != nil {
		return err
	}
	id := j.ID
	if j.Private {
		return fmt.Errorf("job %s belongs to another user (%s): its output is private", c.Args().First(), j.User)
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
		f, err := openOutput(path, j.UID)
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
		n, err := copyFrom(e.stdout, path, off, j.UID)
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

// copyFrom copies path from offset off to w, read as uid (openOutput); a
// missing file is no error.
func copyFrom(w io.Writer, path string, off int64, uid int) (int64, error) {
	f, err := openOutput(path, uid)
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
