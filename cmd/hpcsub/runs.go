package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hpc-sched/hpc/api"
)

// printRuns adds a job's runs to `hpcsub show`: one line per run with its
// nodes, start, end and how it ended (and why the system stopped it), then
// the run in progress, so a requeued job's whole life is on one screen.
// A job in its first run has nothing to add to the lines above.
func printRuns(tw *tabwriter.Writer, j api.Job) {
	if len(j.Runs) == 0 {
		return
	}
	running := j.StartTime != nil && !api.Terminal(j.State)
	row(tw, "runs:", "")
	for _, r := range j.Runs {
		start, end := r.Start, r.End
		line := fmt.Sprintf("#%d  %s  %s .. %s  %s", r.Index, dashIfEmpty(strings.Join(r.Nodes, ",")),
			formatTime(&start), formatTime(&end), r.State)
		if r.ExitCode != nil {
			line += " (exit " + strconv.Itoa(*r.ExitCode) + ")"
		}
		if r.Stop != "" {
			line += "  stopped: " + r.Stop
		}
		if r.Checkpoints > 0 {
			line += fmt.Sprintf("  checkpoints: %d", r.Checkpoints)
		}
		if r.Cause != "" {
			line += "  " + r.Cause
		}
		if r.CheckpointError != "" {
			line += "  (checkpoint failed: " + r.CheckpointError + ")"
		}
		row(tw, "", line)
		for _, g := range r.GPUUsage {
			row(tw, "", fmt.Sprintf("    gpu %s:%d  %s", g.Node, g.Index, gpuRunLine(g)))
		}
	}
	if running {
		row(tw, "", fmt.Sprintf("#%d  %s  %s .. now  %s", j.Restarts, dashIfEmpty(strings.Join(j.Nodes, ",")),
			formatTime(j.StartTime), j.State))
	}
}
