package sim

import (
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpGPU(t *testing.T) {
	for _, ff := range []bool{false, true} {
		for _, b := range []placement.Backfill{placement.EASY} {
			r, err := SimulateGPUWorkload(GPUWorkloadOptions{Seed: 1}, placement.Policy{Backfill: b, FirstFit: ff}, nil)
			t.Logf("ff=%v %s: %+v %v", ff, b, r, err)
		}
	}
	r, err := SimulateGPUWorkload(GPUWorkloadOptions{Seed: 1}, placement.Policy{Backfill: placement.FCFS}, refGPUPlan)
	t.Logf("ref fcfs: %+v %v", r, err)
}
