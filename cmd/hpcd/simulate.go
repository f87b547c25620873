package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/placement/sim"
	"github.com/hpc-sched/hpc/resources/nodeclass"
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
			"hpcd simulate --gpu-workload [--seed S] [--jobs M] [--policy P] [--ranking default|first-fit|best-fit] [--json]\n" +
			"hpcd simulate --cluster NODES.hcl --workload JOBS.csv [--policy P] [--ranking R] [--json]\n" +
			"any of them [--jobs-out FILE.csv]",
		Description: "SWF conventions: jobs sorted by submit time; N single-CPU nodes (default: the header's MaxProcs,\n" +
			"else MaxNodes, else the largest request); a job asks max(allocated, requested) nodes; its walltime is\n" +
			"the requested time when known, else its run time; it runs min(run, walltime). Jobs with run <= 0 or\n" +
			"no or too many processors are skipped (counted over the whole file), then --from/--jobs select a\n" +
			"window of the rest.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "trace", Usage: "Standard Workload Format `FILE` (.swf or .swf.gz)"},
			&cli.StringFlag{Name: "cluster", Usage: "node-class `FILE` (HCL, as for virtual agents) the --workload runs on"},
			&cli.StringFlag{Name: "workload", Usage: "workload CSV `FILE`: " + strings.Join(sim.WorkloadColumns, ",")},
			&cli.StringFlag{Name: "jobs-out", Usage: "write one CSV row per job to `FILE`: " + strings.Join(sim.JobsColumns, ",")},
			&cli.BoolFlag{Name: "gpu-workload", Usage: "replay a generated mixed GPU/CPU workload on a heterogeneous cluster instead of a trace"},
			&cli.StringFlag{Name: "policy", Value: "easy", Usage: "backfilling: fcfs, easy or conservative"},
			&cli.IntFlag{Name: "depth", Usage: "conservative: reserve at most this many blocked jobs (0: all)"},
			&cli.StringFlag{Name: "ranking", Value: "default", Usage: "node ranking: default, packing (the ranking before GPU fragmentation: Packing with its spare-whole-nodes tier), first-fit or best-fit (baselines)"},
			&cli.BoolFlag{Name: "first-fit", Usage: "same as --ranking first-fit"},
			&cli.IntFlag{Name: "nodes", Usage: "machine size `N` for a trace (default from its header)"},
			&cli.IntFlag{Name: "from", Usage: "first job `K` (0-based) of the usable sorted jobs"},
			&cli.IntFlag{Name: "jobs", Usage: "number of jobs `M` (0: all of the trace; GPU workload default 2000)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "GPU workload seed"},
			&cli.Float64Flag{Name: "share-jobs", Usage: "GPU workload: fraction `F` of 1-GPU jobs that share a GPU (0.25 or 0.5)"},
			&cli.Float64Flag{Name: "model-jobs", Usage: "GPU workload: fraction `F` of GPU jobs limited to some models (\"H100|A100\" or \"L40S\")"},
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
	case "packing":
		pol.Scorers = []placement.Scorer{placement.Packing{SpareWholeNodes: true}} // the ranking before fragmentation-aware packing
	default:
		return usageErr("--ranking %q: want default, packing, first-fit or best-fit", ranking)
	}
	for _, f := range []string{"nodes", "from", "jobs", "depth"} {
		if c.Int(f) < 0 {
			return usageErr("--%s must not be negative", f)
		}
	}
	trace, gpu, workload, cluster := c.String("trace"), c.Bool("gpu-workload"), c.String("workload"), c.String("cluster")
	modes := 0
	for _, on := range []bool{trace != "", gpu, workload != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		return usageErr("give --trace FILE.swf, --gpu-workload, or --cluster NODES.hcl --workload JOBS.csv")
	case modes > 1:
		return usageErr("--trace, --gpu-workload and --workload exclude each other")
	case (workload != "") != (cluster != ""):
		return usageErr("--workload and --cluster go together: the jobs and the cluster they run on")
	case trace == "" && (c.IsSet("nodes") || c.IsSet("from")):
		return usageErr("--nodes and --from apply to --trace only")
	case !gpu && (c.IsSet("share-jobs") || c.IsSet("model-jobs")):
		return usageErr("--share-jobs and --model-jobs apply to --gpu-workload only")
	case workload != "" && (c.IsSet("jobs") || c.IsSet("seed")):
		return usageErr("--jobs and --seed do not apply to --workload")
	}
	w := c.App.Writer
	fail := func(err error) error { return cli.Exit("hpcd simulate: "+err.Error(), 1) }
	if trace == "" {
		var nodes []placement.Node
		var jobs []sim.Job
		var name string
		if gpu {
			o := sim.GPUWorkloadOptions{Seed: c.Uint64("seed"), Jobs: c.Int("jobs"), ShareJobs: c.Float64("share-jobs"), ModelJobs: c.Float64("model-jobs")}
			if o.ShareJobs < 0 || o.ShareJobs > 1 || o.ModelJobs < 0 || o.ModelJobs > 1 {
				return usageErr("--share-jobs and --model-jobs are fractions from 0 to 1")
			}
			nodes, jobs = sim.GenerateGPUWorkload(o)
			name = fmt.Sprintf("gpu (seed %d)", o.Seed)
		} else {
			var err error
			if nodes, err = readCluster(cluster); err != nil {
				return fail(err)
			}
			wl, err := sim.ReadWorkloadFile(workload)
			if err != nil {
				return fail(err)
			}
			jobs, name = wl.Jobs, filepath.Base(workload)+" on "+filepath.Base(cluster)
		}
		out, err := replay(nodes, jobs, pol, c.String("jobs-out"))
		if err != nil {
			return fail(err)
		}
		r := out.SummarizeGPU()
		if c.Bool("json") {
			return writeJSON(w, r)
		}
		return writeTable(w, [][2]string{
			{"workload", name},
			{"policy", fmt.Sprintf("%s, ranking %s", c.String("policy"), ranking)},
			{"jobs", fmt.Sprint(r.Jobs)},
			{"avg wait", secs(r.AvgWait)},
			{"max wait", secs(r.MaxWait)},
			{"avg response", secs(r.AvgResponse)},
			{"avg bounded slowdown", fmt.Sprintf("%.2f", r.AvgBoundedSlowdown)},
			{"throughput", fmt.Sprintf("%.2f jobs/h", r.Throughput)},
			{"GPU utilization", fmt.Sprintf("%.3f", r.GPUUtilization)},
			{"CPU utilization", fmt.Sprintf("%.3f", r.Utilization)},
			{"GPU fragmentation", fmt.Sprintf("%.2f GPUs (%.3f of free), over time: %s", r.FragMean, r.FragShare, fragCurve(r.FragCurve))},
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
		return fail(err)
	}
	if t.ExtraLines > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hpcd simulate: %s: %d job lines have more than 18 fields (up to %d); fields past the 18th are ignored\n",
			filepath.Base(trace), t.ExtraLines, t.ExtraFields)
	}
	o := sim.SWFOptions{Policy: pol, Nodes: c.Int("nodes"), From: c.Int("from"), Jobs: c.Int("jobs")}
	nodes, jobs, skipped, err := sim.SWFWorkload(t, o.Nodes, o.From, o.Jobs)
	if err != nil {
		return fail(err)
	}
	out, err := replay(nodes, jobs, pol, c.String("jobs-out"))
	if err != nil {
		return fail(err)
	}
	r := out.Summarize(skipped)
	if c.Bool("json") {
		return writeJSON(w, r)
	}
	return writeTable(w, [][2]string{
		{"trace", filepath.Base(trace)},
		{"window", fmt.Sprintf("jobs %d..%d, %d nodes", o.From, o.From+r.Jobs-1, len(nodes))},
		{"policy", c.String("policy")},
		{"jobs", fmt.Sprint(r.Jobs)},
		{"skipped", fmt.Sprint(r.Skipped)},
		{"avg wait", secs(r.AvgWait)},
		{"max wait", secs(r.MaxWait)},
		{"avg response", secs(r.AvgResponse)},
		{"avg bounded slowdown", fmt.Sprintf("%.2f", r.AvgBoundedSlowdown)},
		{"throughput", fmt.Sprintf("%.2f jobs/h", r.Throughput)},
		{"utilization", fmt.Sprintf("%.3f", r.Utilization)},
		{"makespan", secs(r.Makespan)},
		{"wall", fmt.Sprintf("%.3f s", r.Wall)},
	})
}

// replay runs jobs on nodes through the placer and writes the per-job
// file when jobsOut names one.
func replay(nodes []placement.Node, jobs []sim.Job, pol placement.Policy, jobsOut string) (*sim.Outcome, error) {
	out, err := sim.Replay(nodes, jobs, pol, nil)
	if err != nil {
		return nil, err
	}
	return out, writeJobsOut(jobsOut, out)
}

// writeJobsOut writes the per-job file when --jobs-out names one.
func writeJobsOut(path string, out *sim.Outcome) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--jobs-out: %w", err)
	}
	if err := out.WriteJobs(f); err != nil {
		f.Close()
		return fmt.Errorf("--jobs-out %s: %w", path, err)
	}
	return f.Close()
}

// readCluster expands a node-class file into the placer's nodes.
func readCluster(path string) ([]placement.Node, error) {
	f, err := nodeclass.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nodes []placement.Node
	for _, n := range f.Nodes() {
		pn := placement.Node{Name: n.Name, CPUs: n.CPUs, Memory: n.Memory, Features: n.Features, Links: n.Links}
		domains := 0
		for _, g := range n.GPUs {
			pn.GPUs = append(pn.GPUs, placement.GPU{ID: g.Index, Model: g.Model, Memory: g.Memory, NUMA: g.NUMANode})
			domains = max(domains, g.NUMANode+1)
		}
		if domains > 1 && n.CPUs >= domains {
			// The file gives the GPUs' NUMA nodes, not the CPUs': take the
			// CPUs as split evenly, in id order, as on two-socket x86.
			pn.NUMA = make([][]int, domains)
			for id := range n.CPUs {
				d := id * domains / n.CPUs
				pn.NUMA[d] = append(pn.NUMA[d], id)
			}
		}
		nodes = append(nodes, pn)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no nodes", path)
	}
	return nodes, nil
}

// fragCurve prints the fragmentation curve as fragmented GPUs per span.
func fragCurve(pts []sim.FragPoint) string {
	if len(pts) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f", p.GPUs)
	}
	return b.String()
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
