package exec

import (
	"fmt"
	"path/filepath"
)

// GPUs is what the job's launch said of its GPUs: their NVML indexes and
// the fraction of each it shares with other jobs (0: whole GPUs). An agent
// that adopted the job after a restart asks it to go on measuring the
// job's GPU usage: from the spawner that runs the job, or from the
// job's launch record (the agent's own files, not the job's).
func (h *Handle) GPUs() ([]int, float64, error) {
	if h.sj != nil {
		return h.sj.gpus, h.sj.share, nil
	}
	if h.dir == "" {
		return nil, 0, fmt.Errorf("job %d: no launch record", h.jobID)
	}
	var rec record
	if err := readJSON(filepath.Join(h.dir, recordFile), &rec); err != nil {
		return nil, 0, fmt.Errorf("job %d: read its record: %w", h.jobID, err)
	}
	return gpuIndexes(rec.Spec), rec.Spec.GPUShare, nil
}

// gpuIndexes lists the NVML indexes of a spec's GPUs.
func gpuIndexes(s Spec) []int {
	idx := make([]int, 0, len(s.GPUs))
	for _, g := range s.GPUs {
		idx = append(idx, g.Index)
	}
	return idx
}
