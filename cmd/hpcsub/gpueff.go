package main

import (
	"fmt"
	"strconv"

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
	return fmt.Sprintf("utilisation %s, memory peak %s, %d samples (%s)", util, mem, g.Samples, how)
}
