package agent

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/exec"
)

// DefaultGPUSampleInterval is how often a node's agent samples the GPU
// utilisation and memory of its jobs when not told otherwise (Slurm's
// JobAcctGatherFrequency defaults to 30 s; GPU jobs change faster).
const DefaultGPUSampleInterval = 10 * time.Second

// maxProcsPerGPU bounds the processes one sample looks at on one shared
// GPU (each costs a few /proc reads to find its job), so a GPU crowded
// with processes cannot make a sample's work grow without limit.
const maxProcsPerGPU = 256

// nvmlValueNotAvailable is what NVML reports as a process's memory where
// it cannot tell (e.g. inside some containers).
const nvmlValueNotAvailable = ^uint64(0)

// GPUSampler measures, for each running job that holds GPUs, their
// utilisation and memory through NVML every interval, and gives each run
// its figures when it ends (Finish). A job holding whole GPUs is
// measured per device; a job sharing a GPU with others by its own
// processes (NVML's per-process utilisation samples and running compute
// processes, matched to the job by cgroup or process tree). Without NVML
// it measures nothing and Finish returns nil, so the run's record says
// "not measured" rather than zero.
//
// Work per sample is bounded: two NVML calls per GPU in use, and at most
// maxProcsPerGPU processes examined per shared GPU.
type GPUSampler struct {
	lib      nvml.Interface
	node     string
	interval time.Duration
	log      *slog.Logger
	procs    procTable

	sampling sync.Mutex     // held through a sample
	lastTS   map[int]uint64 // per GPU: the newest process sample taken, NVML µs; under sampling

	mu     sync.Mutex
	devs   map[int]nvml.Device // by NVML index; nil without NVML
	memory map[int]int64       // total memory by index
	uuids  map[int]string
	jobs   map[uint64]*gpuJob
}

// gpuJob is one run being measured.
type gpuJob struct {
	pid     func() int // the job's main process (0 until it started)
	shared  bool
	partial bool            // tracked from its adoption, not its start
	acc     map[int]*gpuAcc // by GPU index
}

// gpuAcc sums one GPU's samples for one run.
type gpuAcc struct {
	utilSum float64
	utilN   int
	peak    *int64
	samples int
}

// StartGPUSampler initialises lib (the real NVML, nvml.New(), or a mock)
// and, when that works, samples the jobs it is told of every interval
// until ctx ends. On a node without an NVML driver it returns a sampler
// that measures nothing: no other NVML call is made after a failed Init,
// which would abort the process.
func StartGPUSampler(ctx context.Context, lib nvml.Interface, node string, interval time.Duration, log *slog.Logger) *GPUSampler {
	if interval <= 0 {
		interval = DefaultGPUSampleInterval
	}
	s := &GPUSampler{lib: lib, node: node, interval: interval, log: log, procs: procTable{root: "/proc"},
		jobs: map[uint64]*gpuJob{}, lastTS: map[int]uint64{}}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		// No driver is a CPU node (the inventory says so already); a
		// driver that fails is a GPU node whose usage goes unmeasured.
		level := slog.LevelWarn
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "GPU usage: not measured (no NVML)", "err", ret)
		return s
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS || n == 0 {
		log.Debug("GPU usage: no GPUs", "err", ret)
		lib.Shutdown()
		return s
	}
	devs, memory, uuids := map[int]nvml.Device{}, map[int]int64{}, map[int]string{}
	for i := 0; i < n; i++ {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		devs[i] = dev
		if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			memory[i] = int64(m.Total)
		}
		if u, ret := dev.GetUUID(); ret == nvml.SUCCESS {
			uuids[i] = u
		}
	}
	s.devs, s.memory, s.uuids = devs, memory, uuids
	go s.loop(ctx)
	return s
}

// Measuring says whether NVML answered, so that runs get figures.
func (s *GPUSampler) Measuring() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devs != nil
}

func (s *GPUSampler) loop(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.sampling.Lock() // no sample in flight, and none after Shutdown
			s.mu.Lock()
			s.devs = nil
			s.mu.Unlock()
			s.lib.Shutdown()
			s.sampling.Unlock()
			return
		case <-t.C:
			s.Sample()
		}
	}
}

// Track starts measuring a run of job id on the GPUs of gpus (NVML
// indexes); shared says it shares them with other jobs. pid gives the
// job's main process. Nothing happens without NVML.
func (s *GPUSampler) Track(id uint64, gpus []int, shared bool, pid func() int) {
	if s == nil || len(gpus) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.devs == nil {
		return
	}
	s.jobs[id] = newGPUJob(gpus, shared, pid)
}

// TrackAdopted is Track for a run this agent adopted after a restart: its
// samples so far were lost with the previous agent, so its figures are
// marked partial. A run already tracked is left as it is.
func (s *GPUSampler) TrackAdopted(id uint64, gpus []int, shared bool, pid func() int) {
	if s == nil || len(gpus) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.devs == nil || s.jobs[id] != nil {
		return
	}
	j := newGPUJob(gpus, shared, pid)
	j.partial = true
	s.jobs[id] = j
}

func newGPUJob(gpus []int, shared bool, pid func() int) *gpuJob {
	j := &gpuJob{pid: pid, shared: shared, acc: map[int]*gpuAcc{}}
	for _, g := range gpus {
		j.acc[g] = &gpuAcc{}
	}
	return j
}

// Finish stops measuring job id and returns its run's figures, one per
// GPU in index order; nil when it was not measured (no NVML, or not
// tracked). A GPU with no successful sample (a run shorter than the
// interval) is listed with Samples 0 and no figures.
func (s *GPUSampler) Finish(id uint64) []api.GPUUsage {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return nil
	}
	delete(s.jobs, id)
	out := make([]api.GPUUsage, 0, len(j.acc))
	for _, idx := range slices.Sorted(maps.Keys(j.acc)) {
		a := j.acc[idx]
		g := api.GPUUsage{Node: s.node, Index: idx, UUID: s.uuids[idx], Shared: j.shared, Memory: s.memory[idx],
			PeakMemory: a.peak, Samples: a.samples, Partial: j.partial}
		if a.utilN > 0 {
			u := min(max(a.utilSum/float64(a.utilN), 0), 100)
			g.Utilization = &u
		}
		out = append(out, g)
	}
	return out
}

// Sample takes one sample of every tracked job's GPUs (the loop calls it
// every interval). NVML and /proc are read without holding the lock that
// Track and Finish take, so a slow GPU query never delays a job's outcome.
func (s *GPUSampler) Sample() {
	s.sampling.Lock() // one sample at a time: lastTS is the sample's
	defer s.sampling.Unlock()
	s.mu.Lock()
	devs := s.devs
	jobs := maps.Clone(s.jobs) // a job's pid, shared and acc keys never change
	s.mu.Unlock()
	if devs == nil || len(jobs) == 0 {
		return
	}
	// Which jobs use each GPU, whole or shared, in a stable order.
	whole := map[int][]*gpuJob{}
	shared := map[int][]uint64{}
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		j := jobs[id]
		for idx := range j.acc {
			if j.shared {
				shared[idx] = append(shared[idx], id)
			} else {
				whole[idx] = append(whole[idx], j)
			}
		}
	}
	var got []measurement
	for idx, js := range whole {
		if dev := devs[idx]; dev != nil {
			got = measureDevice(got, idx, dev, js)
		}
	}
	if len(shared) > 0 {
		owners := s.procs.owners(jobs, shared)
		for idx, ids := range shared {
			if dev := devs[idx]; dev != nil {
				got = s.measureShared(got, idx, dev, jobs, ids, owners)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range got {
		m.acc.add(m.util, m.used) // a run finished meanwhile loses this sample
	}
}

// measurement is one GPU's sample for one run: either figure may be
// unknown (nil).
type measurement struct {
	acc  *gpuAcc
	util *float64
	used *int64
}

// measureDevice measures GPU idx held whole: the device's utilisation
// and memory in use are the job's.
func measureDevice(got []measurement, idx int, dev nvml.Device, js []*gpuJob) []measurement {
	var util *float64
	var used *int64
	if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
		v := float64(u.Gpu)
		util = &v
	}
	if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		v := int64(m.Used)
		used = &v
	}
	for _, j := range js {
		got = append(got, measurement{j.acc[idx], util, used})
	}
	return got
}

// measureShared measures GPU idx shared by the jobs ids: each job's own
// processes' SM utilisation since the last sample, and memory now.
func (s *GPUSampler) measureShared(got []measurement, idx int, dev nvml.Device, jobs map[uint64]*gpuJob, ids []uint64, owners *procOwners) []measurement {
	util := map[uint64]float64{}
	utilOK := false
	samples, ret := dev.GetProcessUtilization(s.lastTS[idx])
	switch {
	case ret == nvml.SUCCESS, ret == nvml.ERROR_NOT_FOUND: // NOT_FOUND: no process ran since lastTS
		utilOK = true
	case ret == nvml.ERROR_INSUFFICIENT_SIZE && samples != nil && len(samples) == 0: // go-nvml's answer for none
		utilOK = true
	}
	if utilOK {
		// A process may have several samples in the window: its mean; a
		// job's processes run side by side: their sum.
		sum, n := map[uint32]float64{}, map[uint32]int{}
		for i, p := range samples {
			if i >= maxProcsPerGPU*8 {
				break
			}
			sum[p.Pid] += float64(p.SmUtil)
			n[p.Pid]++
			s.lastTS[idx] = max(s.lastTS[idx], p.TimeStamp)
		}
		for pid, total := range sum {
			if id, ok := owners.of(int(pid)); ok {
				util[id] += total / float64(n[pid])
			}
		}
	}
	used := map[uint64]int64{}
	memOK := false
	if ps, ret := dev.GetComputeRunningProcesses(); ret == nvml.SUCCESS {
		memOK = true
		for i, p := range ps {
			if i >= maxProcsPerGPU {
				break
			}
			id, ok := owners.of(int(p.Pid))
			if !ok {
				continue
			}
			if p.UsedGpuMemory == nvmlValueNotAvailable {
				used[id] = -1 // this job's memory cannot be told this time
			} else if used[id] >= 0 {
				used[id] += int64(p.UsedGpuMemory)
			}
		}
	}
	for _, id := range ids {
		m := measurement{acc: jobs[id].acc[idx]}
		if utilOK {
			v := min(util[id], 100)
			m.util = &v
		}
		if memOK && used[id] >= 0 {
			v := used[id]
			m.used = &v
		}
		got = append(got, m)
	}
	return got
}

// add takes one sample: util and used may each be unknown (nil).
func (a *gpuAcc) add(util *float64, used *int64) {
	if util == nil && used == nil {
		return
	}
	a.samples++
	if util != nil {
		a.utilSum += *util
		a.utilN++
	}
	if used != nil && (a.peak == nil || *used > *a.peak) {
		v := *used
		a.peak = &v
	}
}

// SetGPUSampler makes l measure the GPUs of the jobs it launches or
// adopts from now on; call it before any launch or adoption.
func (l *Local) SetGPUSampler(s *GPUSampler) { l.gpuUse = s }

// trackAdopted goes on measuring the GPUs of a job adopted after a
// restart, as the job's record names them; its earlier samples are lost.
func (l *Local) trackAdopted(id uint64, h *exec.Handle) {
	if !l.gpuUse.Measuring() {
		return
	}
	gpus, share, err := h.GPUs()
	if err != nil {
		l.log.Warn("GPU usage of an adopted job: not measured", "job", id, "err", err)
		return
	}
	l.gpuUse.TrackAdopted(id, gpus, share > 0, h.PID)
}
