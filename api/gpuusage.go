package api

import "fmt"

// GPUUsage is what the node's agent measured through NVML of one GPU
// during one run of a job, sampled every few seconds while it ran.
//
// A field NVML could not measure is absent, never zero: Utilization is
// nil when no utilisation sample succeeded (e.g. per-process samples
// unsupported on a shared GPU), PeakMemory is nil when no memory sample
// did. A run without any GPUUsage was not measured at all (no NVML on
// the node).
type GPUUsage struct {
	Node  string `json:"node"`
	Index int    `json:"index"` // NVML index on Node
	UUID  string `json:"uuid,omitempty"`
	// Shared: the job shared the GPU with others, so the figures are its
	// own processes' (NVML's per-process samples); otherwise the whole
	// device's.
	Shared bool `json:"shared,omitempty"`
	// Utilization is the mean percentage of time the GPU's SMs ran the
	// job's kernels over the samples taken (0..100).
	Utilization *float64 `json:"utilization,omitempty"`
	// PeakMemory is the most GPU memory the job used in any sample, bytes;
	// Memory is the GPU's total memory (0 when unknown).
	PeakMemory *int64 `json:"peak_memory,omitempty"`
	Memory     int64  `json:"memory,omitempty"`
	// Samples is how many samples the figures come from.
	Samples int `json:"samples"`
	// Partial: sampling began only after the run had started (its agent
	// restarted and adopted it), so the figures cover the rest of it.
	Partial bool `json:"partial,omitempty"`
}

// CheckGPUUsage bounds what an agent may report of a run's GPUs.
func CheckGPUUsage(gs []GPUUsage) error {
	if len(gs) > MaxNodeGPUs {
		return fmt.Errorf("GPU usage of %d GPUs: at most %d", len(gs), MaxNodeGPUs)
	}
	for _, g := range gs {
		switch {
		case g.Index < 0 || g.Index >= 1024:
			return fmt.Errorf("GPU usage: index %d out of range", g.Index)
		case len(g.Node) > MaxNodeNameLen || len(g.UUID) > 128:
			return fmt.Errorf("GPU usage of GPU %d: node or UUID too long", g.Index)
		case g.Utilization != nil && (*g.Utilization < 0 || *g.Utilization > 100):
			return fmt.Errorf("GPU usage of GPU %d: utilisation %v outside 0..100", g.Index, *g.Utilization)
		case g.PeakMemory != nil && *g.PeakMemory < 0, g.Memory < 0, g.Samples < 0:
			return fmt.Errorf("GPU usage of GPU %d: negative memory or samples", g.Index)
		}
	}
	return nil
}

// GPUSummary is a job's GPU usage over all its runs and GPUs, as `hpcsub
// eff` shows it: the mean utilisation weighted by samples, and the peak
// memory of any GPU against that GPU's memory.
type GPUSummary struct {
	Utilization *float64 `json:"utilization,omitempty"`
	PeakMemory  *int64   `json:"peak_memory,omitempty"`
	Memory      int64    `json:"memory,omitempty"` // of the GPU that had the peak
	GPUs        int      `json:"gpus"`             // GPU-runs measured
	Samples     int      `json:"samples"`
	// Partial: some run was measured only from its agent's restart on.
	Partial bool `json:"partial,omitempty"`
}

// SummarizeGPUUsage sums the GPU usage of runs; nil when none of them was
// measured.
func SummarizeGPUUsage(runs []Run) *GPUSummary {
	var s GPUSummary
	var utilSum float64
	var utilN int
	for _, r := range runs {
		for _, g := range r.GPUUsage {
			s.GPUs++
			s.Samples += g.Samples
			s.Partial = s.Partial || g.Partial
			if g.Utilization != nil && g.Samples > 0 {
				utilSum += *g.Utilization * float64(g.Samples)
				utilN += g.Samples
			}
			if g.PeakMemory != nil && (s.PeakMemory == nil || *g.PeakMemory > *s.PeakMemory) {
				peak := *g.PeakMemory
				s.PeakMemory, s.Memory = &peak, g.Memory
			}
		}
	}
	if s.GPUs == 0 {
		return nil
	}
	if utilN > 0 {
		u := utilSum / float64(utilN)
		s.Utilization = &u
	}
	return &s
}
