package main

import (
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

func TestGPUEfficiency(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	b := func(v int64) *int64 { return &v }
	const gib = int64(1) << 30
	tests := []struct {
		name      string
		runs      []api.Run
		wantUtil  string
		wantMem   string
		wantJSON  bool // eff --json has a gpu object
		wantLines int  // per-GPU run lines
	}{
		{"no NVML", []api.Run{{Usage: api.Usage{GPUSeconds: 3600}}}, "not measured (no NVML", "not measured (no NVML", false, 0},
		{"runs shorter than a sample", []api.Run{{GPUUsage: []api.GPUUsage{{Node: "g1", Index: 0, Memory: 40 * gib}}}},
			"not measured (no sample", "not measured (no sample", true, 1},
		{"two runs, weighted by samples", []api.Run{
			{GPUUsage: []api.GPUUsage{{Node: "g1", Index: 0, Utilization: f(90), PeakMemory: b(10 * gib), Memory: 40 * gib, Samples: 3}}},
			{GPUUsage: []api.GPUUsage{{Node: "g1", Index: 1, Utilization: f(10), PeakMemory: b(30 * gib), Memory: 40 * gib, Samples: 1}}},
		}, "70.0% mean over 4 samples of 2 GPU-run(s)", "30GiB peak of 40GiB (75.0%)", true, 2},
		{"memory only (shared, no per-process utilisation)", []api.Run{
			{GPUUsage: []api.GPUUsage{{Node: "g1", Index: 0, Shared: true, PeakMemory: b(gib), Memory: 40 * gib, Samples: 2}}},
		}, "not measured (no sample", "1GiB peak of 40GiB (2.5%)", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ef := jobEfficiency(api.Job{ID: 1, Runs: tc.runs})
			if (ef.GPU != nil) != tc.wantJSON {
				t.Errorf("gpu summary %+v, want present %v", ef.GPU, tc.wantJSON)
			}
			util, mem := gpuEfficiencyLines(ef.GPU)
			if !strings.Contains(util, tc.wantUtil) || !strings.Contains(mem, tc.wantMem) {
				t.Errorf("lines %q / %q, want %q / %q", util, mem, tc.wantUtil, tc.wantMem)
			}
			if strings.Contains(util, " 0.0%") || strings.HasPrefix(mem, "0B") {
				t.Errorf("unmeasured shown as zero: %q / %q", util, mem)
			}
			n := 0
			for _, r := range tc.runs {
				for _, g := range r.GPUUsage {
					line := gpuRunLine(g)
					if g.Utilization == nil && !strings.HasPrefix(line, "utilisation -,") {
						t.Errorf("run line %q shows an unmeasured utilisation", line)
					}
					n++
				}
			}
			if n != tc.wantLines {
				t.Errorf("%d run lines, want %d", n, tc.wantLines)
			}
		})
	}
}

// `hpcsub show` lists each run's GPUs under the run, measured or not.
func TestShowRunsListGPUUsage(t *testing.T) {
	u, peak := 90.0, int64(3)<<30
	j := api.Job{ID: 1, State: api.StateCompleted, Runs: []api.Run{
		{Index: 0, Nodes: []string{"g1"}, State: api.StateRequeued, GPUUsage: []api.GPUUsage{
			{Node: "g1", Index: 0, Utilization: &u, PeakMemory: &peak, Memory: 40 << 30, Samples: 4},
			{Node: "g1", Index: 1, Samples: 0}}},
		{Index: 1, Nodes: []string{"g2"}, State: api.StateCompleted},
	}}
	var b strings.Builder
	tw := newTable(&b)
	printRuns(tw, j)
	tw.Flush()
	out := b.String()
	for _, want := range []string{
		"gpu g1:0  utilisation 90.0%, memory peak 3GiB of 40GiB, 4 samples (whole GPU)",
		"gpu g1:1  utilisation -, memory peak -, 0 samples (whole GPU)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("runs lack %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "gpu ") != 2 {
		t.Errorf("GPU lines for a run without GPU figures:\n%s", out)
	}
}

func TestCoresLine(t *testing.T) {
	for _, tc := range []struct {
		runs []api.Run
		want string
	}{
		{[]api.Run{{CPUs: 4, Nodes: []string{"a"}}}, "4"},
		{[]api.Run{{CPUs: 8, Nodes: []string{"a", "b"}}}, "8 (4 per node on 2 nodes)"},
		{[]api.Run{{CPUs: 2, Nodes: []string{"a"}}, {CPUs: 6, Nodes: []string{"a", "b", "c"}}}, "6 (2 per node on 3 nodes)"},
	} {
		cpus := 0
		for _, r := range tc.runs {
			cpus = max(cpus, r.CPUs)
		}
		if got := coresLine(cpus, tc.runs); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.runs, got, tc.want)
		}
	}
}
