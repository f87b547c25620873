package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/placement/sim"
)

// simulateCommand replays a workload through placement.Plan with virtual
// time: an SWF trace (--trace) or a generated GPU workload
// (--gpu-workload). Mistakes in the flags exit 2, as bad usage does
// everywhere in hpcd and hpcsub.
func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "simulate",
		Usage: "replay a workload trace (SWF) or a generated GPU workload through the placer",
		UsageText: "hpcd simulate --trace FILE.swf [--policy fcfs|easy|conservative] [--nodes N] [--from K] [--jobs M] [--json]\n" +
			"hpcd simulate --gpu-workload [--seed S] [--jobs M] [--policy P] [--first-fit] [--json]",
		Description: "SWF conventions: jobs sorted by submit time; N single-CPU nodes (default: the header's MaxProcs,\n" +
			"else MaxNodes, else the largest request); a job asks max(allocated, requested) nodes; its walltime is\n" +
			"the requested time when known, else its run time; it runs min(run, walltime). Jobs with run <= 0 or\n" +
			"no or too many processors are skipped (counted over the whole file), then --from/--jobs select a\n" +
			"window of the rest.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "trace", Usage: "Standard Workload Format `FILE` (.swf or .swf.gz)"},
			&cli.BoolFlag{Name: "gpu-workload", Usage: "replay a generated mixed GPU/CPU workload on a heterogeneous cluster instead of a trace"},
			&cli.StringFlag{Name: "policy", Value: "easy", Usage: "backfilling: fcfs, easy or conservative"},
			&cli.IntFlag{Name: "depth", Usage: "conservative: reserve at most this many blocked jobs (0: all)"},
			&cli.StringFlag{Name: "ranking", Value: "default", Usage: "node ranking: default, first-fit or best-fit (the last two are baselines)"},
			&cli.BoolFlag{Name: "first-fit", Usage: "same as --ranking first-fit"},
			&cli.IntFlag{Name: "nodes", Usage: "machine size `N` for a trace (default from its header)"},
			&cli.IntFlag{Name: "from", Usage: "first job `K` (0-based) of the usable sorted jobs"},
			&cli.IntFlag{Name: "jobs", Usage: "number of jobs `M` (0: all of the trace; GPU workload default 2000)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "GPU workload seed"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: runSimulate,
	}
}

func usageErr(format string, a ...any) error {
	return cli.Exit("hpcd simulate: "+fmt.Sprintf(format, a...), 2)
}

func runSimulate(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("unexpected argument %q", c.Args().First())
	}
	var pol placement.Policy
	depth, ok := placement.Backfill(c.String("policy")).Depth()
	if !ok {
		return usageErr("--policy %q: want fcfs, easy or conservative", c.String("policy"))
	}
	pol.Depth = depth
	if c.Int("depth") > 0 {
		if depth != placement.DepthAll {
			return usageErr("--depth applies to --policy conservative only")
		}
		pol.Depth = c.Int("depth")
	}
	ranking := c.String("ranking")
	if c.Bool("first-fit") {
		ranking = "first-fit"
	}
	switch ranking {
	case "default":
	case "first-fit":
		pol.Scorers = placement.FirstFitScorers()
	case "best-fit":
		pol.Scorers = placement.BestFitScorers()
	default:
		return usageErr("--ranking %q: want default, first-fit or best-fit", ranking)
	}
	for _, f := range []string{"nodes", "from", "jobs", "depth"} {
		if c.Int(f) < 0 {
			return usageErr("--%s must not be negative", f)
		}
	}
	trace, gpu := c.String("trace"), c.Bool("gpu-workload")
	switch {
	case trace == "" && !gpu:
		return usageErr("give --trace FILE.swf or --gpu-workload")
	case trace != "" && gpu:
		return usageErr("--trace and --gpu-workload exclude each other")
	case gpu && (c.IsSet("nodes") || c.IsSet("from")):
		return usageErr("--nodes and --from apply to --trace only")
	}
	w := c.App.Writer
	if gpu {
		o := sim.GPUWorkloadOptions{Seed: c.Uint64("seed"), Jobs: c.Int("jobs")}
		r, err := sim.SimulateGPUWorkload(o, pol, nil)
		if err != nil {
			return cli.Exit("hpcd simulate: "+err.Error(), 1)
		}
		if c.Bool("json") {
			return writeJSON(w, r)
		}
		return writeTable(w, [][2]string{
			{"workload", fmt.Sprintf("gpu (seed %d)", o.Seed)},
			{"policy", fmt.Sprintf("%s, ranking %s", c.String("policy"), ranking)},
			{"jobs", fmt.Sprint(r.Jobs)},
			{"avg wait", secs(r.AvgWait)},
			{"max wait", secs(r.MaxWait)},
			{"avg bounded slowdown", fmt.Sprintf("%.2f", r.AvgBoundedSlowdown)},
			{"GPU utilization", fmt.Sprintf("%.3f", r.GPUUtilization)},
			{"CPU utilization", fmt.Sprintf("%.3f", r.Utilization)},
			{"multi-GPU jobs", fmt.Sprint(r.MultiGPUJobs)},
			{"on best interconnect", fmt.Sprintf("%.3f", r.BestLinkShare)},
			{"CPU jobs on GPU nodes", fmt.Sprintf("%.3f", r.CPUJobsOnGPUNodes)},
			{"avg wait by GPUs/node", waitsByGPUs(r.AvgWaitByGPUs)},
			{"makespan", secs(r.Makespan)},
			{"wall", fmt.Sprintf("%.3f s", r.Wall)},
		})
	}
	t, err := sim.ReadSWFFile(trace)
	if err != nil {
		return cli.Exit("hpcd simulate: "+err.Error(), 1)
	}
	if t.ExtraLines > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hpcd simulate: %s: %d job lines have more than 18 fields (up to %d); fields past the 18th are ignored\n",
			filepath.Base(trace), t.ExtraLines, t.ExtraFields)
	}
	o := sim.SWFOptions{Policy: pol, Nodes: c.Int("nodes"), From: c.Int("from"), Jobs: c.Int("jobs")}
	r, err := sim.SimulateSWF(t, o)
	if err != nil {
		return cli.Exit("hpcd simulate: "+err.Error(), 1)
	}
	if c.Bool("json") {
		return writeJSON(w, r)
	}
	nodes := o.Nodes
	if nodes == 0 {
		nodes = sim.MachineSize(t)
	}
	return writeTable(w, [][2]string{
		{"trace", filepath.Base(trace)},
		{"window", fmt.Sprintf("jobs %d..%d, %d nodes", o.From, o.From+r.Jobs-1, nodes)},
		{"policy", c.String("policy")},
		{"jobs", fmt.Sprint(r.Jobs)},
		{"skipped", fmt.Sprint(r.Skipped)},
		{"avg wait", secs(r.AvgWait)},
		{"max wait", secs(r.MaxWait)},
		{"avg bounded slowdown", fmt.Sprintf("%.2f", r.AvgBoundedSlowdown)},
		{"utilization", fmt.Sprintf("%.3f", r.Utilization)},
		{"makespan", secs(r.Makespan)},
		{"wall", fmt.Sprintf("%.3f s", r.Wall)},
	})
}

// waitsByGPUs prints "0: 12 s, 1: 40 s, ..." in GPU-count order.
func waitsByGPUs(m map[string]float64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(len(a), len(b))*2 + cmp.Compare(a, b) })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", k, secs(m[k]))
	}
	return b.String()
}

func secs(s float64) string { return fmt.Sprintf("%.0f s", s) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
