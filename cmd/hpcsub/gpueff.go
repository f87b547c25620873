package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources"
)

// gpuEfficiencyLines are `hpcsub eff`'s GPU utilisation and GPU memory
// lines. What was not measured says so and why, instead of a zero that
// would read as an idle GPU.
func gpuEfficiencyLines(g *api.GPUSummary) (util, mem string) {
	if g == nil {
		const why = "not measured (no NVML on the job's nodes)"
		return why, why
	}
	const short = "not measured (no sample: runs shorter than the node's --gpu-sample-interval, or NVML could not tell)"
	util, mem = short, short
	if g.Utilization != nil {
		util = strconv.FormatFloat(*g.Utilization, 'f', 1, 64) + fmt.Sprintf("%% mean over %d samples of %d GPU-run(s)", g.Samples, g.GPUs)
	}
	if g.Partial {
		util += " (partial: an agent restart lost earlier samples)"
	}
	if g.PeakMemory != nil {
		mem = resources.FormatBytes(*g.PeakMemory) + " peak"
		if g.Memory > 0 {
			mem += " of " + resources.FormatBytes(g.Memory) + " (" + strconv.FormatFloat(100*float64(*g.PeakMemory)/float64(g.Memory), 'f', 1, 64) + "%)"
		}
	}
	return util, mem
}

// gpuRunLine is one GPU of one run, as NVML measured it.
func gpuRunLine(g api.GPUUsage) string {
	util, mem := "-", "-"
	if g.Utilization != nil {
		util = strconv.FormatFloat(*g.Utilization, 'f', 1, 64) + "%"
	}
	if g.PeakMemory != nil {
		mem = resources.FormatBytes(*g.PeakMemory)
		if g.Memory > 0 {
			mem += " of " + resources.FormatBytes(g.Memory)
		}
	}
	how := "whole GPU"
	if g.Shared {
		how = "own processes on a shared GPU"
	}
	if g.Partial {
		how += ", from the agent's restart on"
	}
	return fmt.Sprintf("utilisation %s, memory peak %s, %d samples (%s)", util, mem, g.Samples, how)
}

// noRunYet is what `hpcsub eff` can say of a job none of whose runs has
// ended: what it holds and for how long so far, not efficiencies.
func noRunYet(kv func(k, v string), j api.Job, now time.Time) {
	if j.StartTime == nil {
		kv("asked", fmt.Sprintf("%d node(s), %d cores and %s per node, walltime %s", max(j.NodesWanted, 1), j.CPUs,
			resources.FormatBytes(j.Memory), dashIfEmpty(j.Walltime)))
		return
	}
	kv("cores", fmt.Sprintf("%d per node on %s", j.CPUs, dashIfEmpty(strings.Join(j.Nodes, ","))))
	kv("running for", formatElapsed(elapsed(j, now))+" of "+dashIfEmpty(j.Walltime))
}

// coresLine is eff's cores: the most any run held, with seff's per-node
// figure when the job spans nodes.
func coresLine(cpus int, runs []api.Run) string {
	nodes := 1
	for _, r := range runs {
		if r.CPUs == cpus {
			nodes = max(len(r.Nodes), 1)
		}
	}
	if nodes == 1 {
		return strconv.Itoa(cpus)
	}
	return fmt.Sprintf("%d (%d per node on %d nodes)", cpus, cpus/nodes, nodes)
}
