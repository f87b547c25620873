package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/exec"
	"github.com/hpc-sched/hpc/resources/inventory"
)

// TestLocalReportsGPUUsage runs a real job (a process in a cgroup, through
// the executor and its shim) holding GPU 0 of a DGX A100 mock: what the
// sampler measured while it ran comes back in the run's outcome; on a
// node without NVML the outcome has no GPU figures at all.
func TestLocalReportsGPUUsage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the job runs in a cgroup")
	}
	withNVML := func() nvml.Interface {
		srv := dgxa100.New()
		d := srv.Devices[0].(*dgxa100.Device)
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 70}, nvml.SUCCESS }
		d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: a100Memory, Used: 5 << 30}, nvml.SUCCESS
		}
		return srv
	}
	withoutNVML := func() nvml.Interface {
		return &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	}
	for i, tc := range []struct {
		name string
		lib  func() nvml.Interface
		want string // the outcome's gpu_usage, as JSON ("" when absent)
	}{
		{"NVML", withNVML, `[{"node":"gpu01","index":0,"uuid":"UUID","utilization":70,"peak_memory":5368709120,"memory":42949672960,"samples":2}]`},
		{"no NVML", withoutNVML, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dir := t.TempDir()
			ex, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state"), AllowRoot: true,
				CgroupParent: fmt.Sprintf("hpc-agent-test-%d-%d", os.Getpid(), i)}, discard())
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			outcomes := make(chan api.Outcome, 1)
			l := New(ctx, "gpu01", ex, []inventory.GPU{{Index: 0, Minor: 250, Memory: a100Memory}}, func(o api.Outcome) { outcomes <- o }, discard())
			lib := tc.lib()
			s := StartGPUSampler(ctx, lib, "gpu01", time.Hour, discard())
			l.SetGPUSampler(s)
			a, gate := gatedAssignment(dir, 7, 0)
			if err := l.Launch(ctx, a); err != nil {
				t.Fatal(err)
			}
			s.Sample() // the job waits for the gate: both samples fall within its run
			s.Sample()
			o := openGate(t, gate, outcomes)
			defer l.Release(7)
			if o.State != api.StateCompleted {
				b, _ := os.ReadFile(a.Stderr)
				t.Fatalf("outcome %+v, stderr %q", o, b)
			}
			got := ""
			if o.GPUUsage != nil {
				b, _ := json.Marshal(o.GPUUsage)
				got = string(b)
			}
			if srv, ok := lib.(*dgxa100.Server); ok {
				tc.want = strings.Replace(tc.want, "UUID", srv.Devices[0].(*dgxa100.Device).UUID, 1)
			}
			if got != tc.want {
				t.Errorf("outcome's GPU usage\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestLocalAdoptedJobGPUUsage: an agent that restarts while a GPU job
// runs adopts it and goes on measuring its GPUs, as the job's exec record
// names them; the run's figures are marked partial.
func TestLocalAdoptedJobGPUUsage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the job runs in a cgroup")
	}
	for _, spawner := range []bool{false, true} { // hpcd launches through the spawner where it can
		t.Run(fmt.Sprint("spawner ", spawner), func(t *testing.T) { adoptedJobGPUUsage(t, spawner) })
	}
}

func adoptedJobGPUUsage(t *testing.T, spawner bool) {
	dir := t.TempDir()
	cfg := exec.Config{StateDir: filepath.Join(dir, "state"), AllowRoot: true, Spawner: spawner,
		CgroupParent: fmt.Sprintf("hpc-agent-test-%d-adopt-%v", os.Getpid(), spawner)}
	ex, err := exec.New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	gpus := []inventory.GPU{{Index: 0, Minor: 250, Memory: a100Memory}, {Index: 3, Minor: 253, Memory: a100Memory}}
	srv := dgxa100.New()
	for _, d := range srv.Devices {
		d.(*dgxa100.Device).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 40}, nvml.SUCCESS }
	}

	// The first agent launches the job, then stops (its watchers with it).
	ctx1, stop1 := context.WithCancel(context.Background())
	first := New(ctx1, "gpu01", ex, gpus, func(o api.Outcome) { t.Errorf("the stopped agent reported %+v", o) }, discard())
	first.SetGPUSampler(StartGPUSampler(ctx1, srv, "gpu01", time.Hour, discard()))
	a, gate := gatedAssignment(dir, 8, 3)
	if err := first.Launch(ctx1, a); err != nil {
		t.Fatal(err)
	}
	stop1()

	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	outcomes := make(chan api.Outcome, 1)
	// The restarted agent's own executor, on the same state.
	ex2, err := exec.New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer ex2.Close()
	second := New(ctx2, "gpu01", ex2, gpus, func(o api.Outcome) { outcomes <- o }, discard())
	s := StartGPUSampler(ctx2, srv, "gpu01", time.Hour, discard())
	second.SetGPUSampler(s)
	if ids, err := second.AdoptAll(func(uint64) {}); err != nil || len(ids) != 1 || ids[0] != 8 {
		t.Fatalf("adopted %v, %v", ids, err)
	}
	s.Sample()
	o := openGate(t, gate, outcomes)
	defer second.Release(8)
	if len(o.GPUUsage) != 1 {
		t.Fatalf("outcome's GPU usage %+v, want GPU 3's", o.GPUUsage)
	}
	g := o.GPUUsage[0]
	if g.Index != 3 || !g.Partial || g.Samples != 1 || g.Utilization == nil || *g.Utilization != 40 {
		t.Errorf("adopted run's GPU usage %+v, want GPU 3, partial, 1 sample at 40%%", g)
	}
}

// gatedAssignment is job id on GPU gpu, run as root in dir, that ends once
// the file gate (returned) exists: openGate.
func gatedAssignment(dir string, id uint64, gpu int) (api.Assignment, string) {
	gate := filepath.Join(dir, "go")
	return api.Assignment{JobID: id, Attempt: 1, Name: "train", User: "root", Workdir: dir,
		Script: "while [ ! -e " + gate + " ]; do sleep 0.02; done",
		Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err"), Memory: 256 << 20,
		GPUs: []int{gpu}, ArrayIndex: -1, Walltime: time.Minute}, gate
}

// openGate lets a job that waits for the file gate end, and returns the
// outcome it reports.
func openGate(t *testing.T, gate string, outcomes <-chan api.Outcome) api.Outcome {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-outcomes:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("no outcome within 30 s")
	}
	return api.Outcome{}
}
