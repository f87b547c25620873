package exec

import (
	"fmt"
	"path/filepath"
)

// GPUs is what the job's record says of its GPUs: their NVML indexes and
// the fraction of each it shares with other jobs (0: whole GPUs). An agent
// that adopted the job after a restart reads it to go on measuring the
// job's GPU usage (the record is the agent's own, not the job's).
func (h *Handle) GPUs() ([]int, float64, error) {
	var rec record
	if err := readJSON(filepath.Join(h.dir, recordFile), &rec); err != nil {
		return nil, 0, fmt.Errorf("job %d: read its record: %w", h.jobID, err)
	}
	idx := make([]int, 0, len(rec.Spec.GPUs))
	for _, g := range rec.Spec.GPUs {
		idx = append(idx, g.Index)
	}
	return idx, rec.Spec.GPUShare, nil
}
