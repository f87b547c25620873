package agent

import (
	"os"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// BenchmarkGPUSample is the agent's own work per sample (NVML's is the
// mock's, next to nothing): eight jobs holding a DGX's GPUs whole, or
// eight jobs sharing GPU 0 with 64 processes on it (each matched to its
// job through /proc: the agent's own threads here, so their ancestry is
// real).
func BenchmarkGPUSample(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "whole"
		if shared {
			name = "shared"
		}
		b.Run(name, func(b *testing.B) {
			srv := dgxa100.New()
			self := uint32(os.Getpid())
			procs := make([]nvml.ProcessInfo, 64)
			util := make([]nvml.ProcessUtilizationSample, 64)
			for i := range procs {
				procs[i] = nvml.ProcessInfo{Pid: self + uint32(i), UsedGpuMemory: 1 << 30}
				util[i] = nvml.ProcessUtilizationSample{Pid: self + uint32(i), TimeStamp: uint64(i), SmUtil: 10}
			}
			for _, d := range srv.Devices {
				md := d.(*dgxa100.Device)
				md.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 50}, nvml.SUCCESS }
				md.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return procs, nvml.SUCCESS }
				md.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) { return util, nvml.SUCCESS }
			}
			s := StartGPUSampler(b.Context(), srv, "gpu01", 1<<62, discard())
			for i := range 8 {
				gpu := i
				if shared {
					gpu = 0
				}
				s.Track(uint64(i), []int{gpu}, shared, os.Getpid)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Sample()
			}
		})
	}
}
