package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/hpc-sched/hpc/api"
)

const a100Memory = 40 << 30 // the dgxa100 mock's A100-SXM4-40GB

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startMockSampler starts a sampler on lib whose own ticker never fires
// during the test: the test takes each sample itself (Sample), so what is
// sampled does not depend on timing.
func startMockSampler(t *testing.T, lib nvml.Interface) *GPUSampler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return StartGPUSampler(ctx, lib, "gpu01", time.Hour, discard())
}

// TestGPUSamplerWholeGPUs: jobs holding whole GPUs get the devices' own
// utilisation (mean over samples) and memory in use (peak), from a DGX
// A100 mock whose utilisation and memory answers (unset in the mock) the
// test provides; GPUs no job holds are never asked.
func TestGPUSamplerWholeGPUs(t *testing.T) {
	srv := dgxa100.New()
	var asked [8]atomic.Int32
	// Per GPU, what each successive sample sees: utilisation %, memory used.
	util := map[int][]uint32{0: {90, 70, 80}, 1: {10, 20, 30}, 2: {50, 50, 50}}
	used := map[int][]uint64{0: {1 << 30, 30 << 30, 2 << 30}, 1: {0, 5 << 30, 4 << 30}, 2: {8 << 30, 8 << 30, 8 << 30}}
	for i, d := range srv.Devices {
		md := d.(*dgxa100.Device)
		md.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			n := asked[i].Add(1) - 1
			if i == 2 && n == 1 {
				return nvml.Utilization{}, nvml.ERROR_UNKNOWN // one failed query: left out, not zero
			}
			return nvml.Utilization{Gpu: util[i][n]}, nvml.SUCCESS
		}
		md.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			n := max(asked[i].Load()-1, 0) // memory follows the utilisation query of the same sample
			var u uint64
			if us, ok := used[i]; ok && int(n) < len(us) {
				u = us[n]
			}
			return nvml.Memory{Total: a100Memory, Used: u, Free: a100Memory - u}, nvml.SUCCESS
		}
	}
	s := startMockSampler(t, srv)
	if !s.Measuring() {
		t.Fatal("sampler on the DGX mock does not measure")
	}
	s.Track(1, []int{1, 0}, false, func() int { return 0 })
	s.Track(2, []int{2}, false, func() int { return 0 })
	for range 3 {
		s.Sample()
	}
	got1, got2 := s.Finish(1), s.Finish(2)
	want1 := []api.GPUUsage{
		{Node: "gpu01", Index: 0, UUID: srv.Devices[0].(*dgxa100.Device).UUID, Utilization: ptr(80.0), PeakMemory: ptr(int64(30 << 30)), Memory: a100Memory, Samples: 3},
		{Node: "gpu01", Index: 1, UUID: srv.Devices[1].(*dgxa100.Device).UUID, Utilization: ptr(20.0), PeakMemory: ptr(int64(5 << 30)), Memory: a100Memory, Samples: 3},
	}
	want2 := []api.GPUUsage{
		// The failed utilisation query leaves two utilisation samples; memory was read all three times.
		{Node: "gpu01", Index: 2, UUID: srv.Devices[2].(*dgxa100.Device).UUID, Utilization: ptr(50.0), PeakMemory: ptr(int64(8 << 30)), Memory: a100Memory, Samples: 3},
	}
	checkUsage(t, "job 1", got1, want1)
	checkUsage(t, "job 2", got2, want2)
	for i := 3; i < 8; i++ {
		if n := asked[i].Load(); n != 0 {
			t.Errorf("GPU %d, held by no job, was asked %d times", i, n)
		}
	}
	// Finished runs are no longer sampled, and a second Finish has nothing.
	s.Sample()
	if n := asked[0].Load(); n != 3 {
		t.Errorf("GPU 0 asked %d times after its job finished, want 3", n)
	}
	if again := s.Finish(1); again != nil {
		t.Errorf("second Finish: %+v", again)
	}
}

// TestGPUSamplerShortRun: a run that ended before any sample lists its GPU
// with no figures and 0 samples, not with zeros.
func TestGPUSamplerShortRun(t *testing.T) {
	srv := dgxa100.New()
	s := startMockSampler(t, srv)
	s.Track(3, []int{4}, false, func() int { return 0 })
	got := s.Finish(3)
	if len(got) != 1 || got[0].Samples != 0 || got[0].Utilization != nil || got[0].PeakMemory != nil || got[0].Index != 4 {
		t.Fatalf("short run: %+v", got)
	}
	b, _ := json.Marshal(got[0])
	if strings.Contains(string(b), "utilization") || strings.Contains(string(b), "peak_memory") {
		t.Errorf("short run's JSON %s carries figures", b)
	}
}

// TestGPUSamplerSharedGPU: two jobs share GPU 0 with a process of nobody's;
// each job is charged its own processes' SM utilisation (NVML's process
// samples since the last sample's newest timestamp, a process's samples
// averaged, a job's processes summed) and compute memory, found by
// descent from the job's main process (real processes: no cgroup of
// their own here, so the process tree decides).
func TestGPUSamplerSharedGPU(t *testing.T) {
	jobA := startProcess(t, "sh", "-c", "sleep 60; :") // the sleep is A's child, not exec'd over sh
	childA := childOf(t, jobA)
	jobB := startProcess(t, "sleep", "60")
	stranger := startProcess(t, "sleep", "60")

	srv := dgxa100.New()
	dev := srv.Devices[0].(*dgxa100.Device)
	var lastSeen []uint64
	round := 0
	dev.GetProcessUtilizationFunc = func(since uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		lastSeen = append(lastSeen, since)
		round++
		if round == 2 {
			return nil, nvml.ERROR_NOT_FOUND // nothing ran on the GPU since: 0%, measured
		}
		return []nvml.ProcessUtilizationSample{
			{Pid: uint32(childA), TimeStamp: 100, SmUtil: 30},
			{Pid: uint32(childA), TimeStamp: 200, SmUtil: 50}, // A's child: mean 40
			{Pid: uint32(jobA), TimeStamp: 150, SmUtil: 10},   // + A's main process: 50
			{Pid: uint32(jobB), TimeStamp: 180, SmUtil: 20},
			{Pid: uint32(stranger), TimeStamp: 190, SmUtil: 90}, // no job's: nobody is charged
		}, nvml.SUCCESS
	}
	mem := [][]nvml.ProcessInfo{
		{{Pid: uint32(childA), UsedGpuMemory: 1 << 30}, {Pid: uint32(jobA), UsedGpuMemory: 512 << 20},
			{Pid: uint32(jobB), UsedGpuMemory: 2 << 30}, {Pid: uint32(stranger), UsedGpuMemory: 10 << 30}},
		{{Pid: uint32(childA), UsedGpuMemory: 3 << 30}, {Pid: uint32(stranger), UsedGpuMemory: 10 << 30}},
	}
	memRound := 0
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		memRound++
		return mem[memRound-1], nvml.SUCCESS
	}
	// Shared GPUs are measured per process only: the device-wide answers
	// would charge one job with the others' work.
	dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		t.Error("a shared GPU was measured device-wide")
		return nvml.Utilization{}, nvml.ERROR_UNKNOWN
	}

	s := startMockSampler(t, srv)
	s.Track(10, []int{0}, true, func() int { return jobA })
	s.Track(11, []int{0}, true, func() int { return jobB })
	s.Sample()
	s.Sample()
	uuid := dev.UUID
	checkUsage(t, "job A", s.Finish(10), []api.GPUUsage{
		{Node: "gpu01", Index: 0, UUID: uuid, Shared: true, Utilization: ptr(25.0), PeakMemory: ptr(int64(3 << 30)), Memory: a100Memory, Samples: 2}})
	checkUsage(t, "job B", s.Finish(11), []api.GPUUsage{
		{Node: "gpu01", Index: 0, UUID: uuid, Shared: true, Utilization: ptr(10.0), PeakMemory: ptr(int64(2 << 30)), Memory: a100Memory, Samples: 2}})
	if len(lastSeen) != 2 || lastSeen[0] != 0 || lastSeen[1] != 200 {
		t.Errorf("process samples asked since %v, want [0 200] (each sample takes only what is newer than the last)", lastSeen)
	}
}

// TestGPUSamplerSharedUnsupported: where per-process utilisation is not
// supported (e.g. some vGPU and older GPUs), a shared GPU's utilisation
// is absent while its memory is still measured.
func TestGPUSamplerSharedUnsupported(t *testing.T) {
	job := startProcess(t, "sleep", "60")
	srv := dgxa100.New()
	dev := srv.Devices[5].(*dgxa100.Device)
	dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		return nil, nvml.ERROR_NOT_SUPPORTED
	}
	dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: uint32(job), UsedGpuMemory: 7 << 30}}, nvml.SUCCESS
	}
	s := startMockSampler(t, srv)
	s.Track(12, []int{5}, true, func() int { return job })
	s.Sample()
	checkUsage(t, "job", s.Finish(12), []api.GPUUsage{
		{Node: "gpu01", Index: 5, UUID: dev.UUID, Shared: true, PeakMemory: ptr(int64(7 << 30)), Memory: a100Memory, Samples: 1}})
}

// TestGPUSamplerWithoutNVML: on a node without an NVIDIA driver (Init
// fails) nothing else is called — the real library would abort the
// process — and runs get no GPU figures at all: absent, not zeros.
func TestGPUSamplerWithoutNVML(t *testing.T) {
	// Every other method of this mock panics when called.
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	s := startMockSampler(t, lib)
	if s.Measuring() {
		t.Error("measuring without NVML")
	}
	s.Track(1, []int{0, 1}, false, func() int { return os.Getpid() })
	s.Sample()
	if got := s.Finish(1); got != nil {
		t.Errorf("usage without NVML: %+v", got)
	}
	// A nil sampler (an agent not given one) measures nothing either.
	var none *GPUSampler
	none.Track(1, []int{0}, false, nil)
	if none.Finish(1) != nil || none.Measuring() {
		t.Error("nil sampler measured")
	}
	b, err := json.Marshal(api.Run{Usage: api.Usage{ElapsedSeconds: 5, GPUSeconds: 10}})
	if err != nil || strings.Contains(string(b), "gpu_usage") {
		t.Errorf("an unmeasured run encodes as %s (%v): want no gpu_usage field", b, err)
	}
}

// TestProcOwnersByCgroup: a job with a cgroup of its own claims its
// processes by cgroup even when they left its process tree (a daemonised
// child, reparented to init); a job in the agent's own cgroup (no
// cgroups) goes by descent only. /proc is a fixture here.
func TestProcOwnersByCgroup(t *testing.T) {
	root := t.TempDir()
	proc := func(pid string, ppid int, cgroup string) {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644)
		os.WriteFile(filepath.Join(dir, "stat"), []byte(pid+" (a (b) c) S "+strconv.Itoa(ppid)+" 1 1 0 -1"), 0o644)
	}
	agentCG := "12:memory:/\n0::/agent\n"
	proc("self", 1, agentCG)
	proc("100", 50, "12:memory:/hpc/job-1\n0::/hpc/job-1\n") // job 1's main process
	proc("101", 100, "12:memory:/hpc/job-1\n0::/hpc/job-1\n")
	proc("102", 1, "12:memory:/hpc/job-1\n0::/hpc/job-1\n") // daemonised, still in job 1's cgroup
	proc("200", 50, agentCG)                                // job 2's main process: no cgroup of its own
	proc("201", 200, agentCG)
	proc("202", 201, agentCG)
	proc("400", 1, "12:memory:/hpc/job-1\n0::/hpc/job-1\n") // job 1's, daemonised
	proc("401", 400, agentCG)                               // its child, moved out of job 1's cgroup
	proc("203", 202, agentCG)                               // job 2's grandchild's child: answered from the walk before
	proc("300", 1, agentCG)                                 // nobody's
	proc("301", 1, "0::/hpc/job-9\n")
	jobs := map[uint64]*gpuJob{
		1: {pid: func() int { return 100 }},
		2: {pid: func() int { return 200 }},
		3: {pid: func() int { return 0 }}, // not started yet
	}
	o := procTable{root: root}.owners(jobs, map[int][]uint64{0: {1, 2, 3}})
	tests := []struct {
		pid  int
		want uint64 // 0: nobody's
	}{
		// Asked in this order: 401's walk passes 400 without deciding it.
		{100, 1}, {101, 1}, {102, 1}, {202, 2}, {201, 2}, {200, 2}, {203, 2}, {401, 0}, {400, 1},
		{300, 0}, {301, 0}, {999, 0}, {0, 0},
	}
	for _, tc := range tests {
		id, ok := o.of(tc.pid)
		if ok != (tc.want != 0) || id != tc.want {
			t.Errorf("pid %d: job %d (%v), want %d", tc.pid, id, ok, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func checkUsage(t *testing.T, what string, got, want []api.GPUUsage) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// startProcess runs a real process for the test's length.
func startProcess(t *testing.T, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// childOf waits for pid's first child to appear.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	path := filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				c, _ := strconv.Atoi(f[0])
				return c
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d started no child", pid)
	return 0
}

// TestGPUSamplerWhileJobsComeAndGo: the sampler's own loop samples while
// runs start and finish (run with -race): every run's figures are whole
// samples of what the mock answers.
func TestGPUSamplerWhileJobsComeAndGo(t *testing.T) {
	srv := dgxa100.New()
	for _, d := range srv.Devices {
		d.(*dgxa100.Device).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 40}, nvml.SUCCESS
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := StartGPUSampler(ctx, srv, "gpu01", time.Millisecond, discard())
	for i := range 200 {
		id := uint64(i)
		s.Track(id, []int{i % 8}, false, func() int { return 0 })
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		for _, g := range s.Finish(id) {
			if g.Samples > 0 && (g.Utilization == nil || *g.Utilization != 40 || g.PeakMemory == nil) {
				t.Fatalf("run %d: %+v", id, g)
			}
		}
	}
}

// TestGPUSamplerAdoptedRun: a run adopted after an agent restart is
// measured from then on and its figures say they are partial; adopting a
// run already tracked (launched by this agent) changes nothing.
func TestGPUSamplerAdoptedRun(t *testing.T) {
	srv := dgxa100.New()
	for _, d := range srv.Devices {
		d.(*dgxa100.Device).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 60}, nvml.SUCCESS
		}
	}
	s := startMockSampler(t, srv)
	s.TrackAdopted(1, []int{3}, false, func() int { return 0 })
	s.Track(2, []int{4}, false, func() int { return 0 })
	s.Sample()
	s.TrackAdopted(2, []int{4}, false, func() int { return 0 }) // must not reset job 2
	s.Sample()
	a, b := s.Finish(1), s.Finish(2)
	if len(a) != 1 || !a[0].Partial || a[0].Samples != 2 || *a[0].Utilization != 60 {
		t.Errorf("adopted run: %+v", a)
	}
	if len(b) != 1 || b[0].Partial || b[0].Samples != 2 {
		t.Errorf("launched run adopted again: %+v", b)
	}
}
