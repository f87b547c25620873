package agent

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/exec"
	"github.com/hpc-sched/hpc/resources"
	"github.com/hpc-sched/hpc/resources/inventory"
)

func TestRegistration(t *testing.T) {
	inv := inventory.Inventory{
		CPUs: 4, CPUIDs: []int{0, 1, 4, 5}, Memory: 64 << 30,
		GPUs: []inventory.GPU{
			{Index: 0, UUID: "GPU-a", Model: "NVIDIA H100 80GB HBM3", Memory: 80 << 30, NUMANode: 0, Minor: 0, PCIBusID: "0000:3b:00.0"},
			{Index: 1, UUID: "GPU-b", Model: "NVIDIA H100 80GB HBM3", Memory: 80 << 30, NUMANode: 1, Minor: 1},
		},
		Links: [][]resources.Link{{resources.LinkNone, resources.LinkNVLink}, {resources.LinkNVLink, resources.LinkNone}},
	}
	reg := Registration("gpu07", inv, "cgroup-v1", []string{"ib"}, 2<<30)
	want := api.NodeRegistration{
		Name: "gpu07", CPUIDs: []int{0, 1, 4, 5}, Memory: 62 << 30, Links: inv.Links,
		Features: []string{"ib"}, Isolation: "cgroup-v1",
		GPUs: []api.GPU{
			{Index: 0, UUID: "GPU-a", Model: "NVIDIA H100 80GB HBM3", Memory: 80 << 30, NUMANode: 0, PCIBusID: "0000:3b:00.0"},
			{Index: 1, UUID: "GPU-b", Model: "NVIDIA H100 80GB HBM3", Memory: 80 << 30, NUMANode: 1},
		},
	}
	if !reflect.DeepEqual(reg, want) {
		t.Errorf("registration\n got %+v\nwant %+v", reg, want)
	}
	if cpu := Registration("c1", inventory.Inventory{CPUIDs: []int{0}, Memory: 1 << 30}, "none", nil, 0); len(cpu.GPUs) != 0 || cpu.Memory != 1<<30 {
		t.Errorf("CPU-only registration %+v", cpu)
	}
}

func testAgent(gpus []inventory.GPU) *Local {
	return New(context.Background(), "n1", nil, gpus, func(api.Outcome) {}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestSpecFromAssignment(t *testing.T) {
	l := testAgent([]inventory.GPU{{Index: 0, Minor: 3}, {Index: 1, Minor: -1}, {Index: 2, Minor: 5}})
	a := api.Assignment{
		JobID: 42, Name: "train", User: "alice", UID: 1000, GID: 100, Groups: []uint32{100, 27},
		Argv: []string{"python", "train.py"}, Env: []string{"A=1"}, Workdir: "/scratch/a",
		Stdout: "/scratch/a/o", Stderr: "/scratch/a/e", CPUs: []int{2, 3}, Memory: 4 << 30,
		GPUs: []int{2, 1, 7}, NodeList: []string{"n0", "n1"}, ArrayIndex: 3, RestartCount: 2,
		CheckpointDir: "/ckpt/42", Walltime: time.Hour, WarnSignal: "SIGUSR1", WarnBefore: 5 * time.Minute,
	}
	s, err := l.spec(a)
	if err != nil {
		t.Fatal(err)
	}
	want := exec.Spec{
		// This agent is n1: the second node of the gang.
		JobID: 42, Name: "train", User: "alice", Argv: a.Argv, Env: []string{"A=1", "HPC_NODE_RANK=1", "HPC_NNODES=2"}, Dir: "/scratch/a",
		UID: 1000, GID: 100, Groups: a.Groups, Stdout: a.Stdout, Stderr: a.Stderr,
		CPUSet: []int{2, 3}, Memory: 4 << 30,
		// Index 1 has no known minor and 7 is not on this node: -1 (no device rule).
		GPUs:         []exec.GPUDevice{{Index: 2, Minor: 5}, {Index: 1, Minor: -1}, {Index: 7, Minor: -1}},
		AllGPUMinors: []int{3, 5},
		NodeList:     a.NodeList, ArrayIndex: 3, RestartCount: 2, CheckpointDir: "/ckpt/42",
		Walltime: time.Hour, WarnSignal: syscall.SIGUSR1, WarnBefore: 5 * time.Minute,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("spec\n got %+v\nwant %+v", s, want)
	}
}

func TestSpecWarnSignal(t *testing.T) {
	l := testAgent(nil)
	cases := []struct {
		name    string
		want    syscall.Signal
		wantErr bool
	}{
		{"", 0, false},
		{"SIGUSR1", syscall.SIGUSR1, false},
		{"SIGUSR2", syscall.SIGUSR2, false},
		{"SIGTERM", syscall.SIGTERM, false},
		{"SIGBOGUS", 0, true},
		{"usr1", 0, true}, // the server sends normalised names only
	}
	for _, c := range cases {
		s, err := l.spec(api.Assignment{JobID: 1, WarnSignal: c.name, ArrayIndex: -1})
		if (err != nil) != c.wantErr {
			t.Errorf("signal %q: err %v, want error %v", c.name, err, c.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), c.name) {
				t.Errorf("signal %q: error %q does not name it", c.name, err)
			}
			continue
		}
		if s.WarnSignal != c.want {
			t.Errorf("signal %q: got %v, want %v", c.name, s.WarnSignal, c.want)
		}
	}
	// Every name the job file accepts for checkpoint.signal must convert.
	accepted := []string{"SIGHUP", "SIGINT", "SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGALRM",
		"SIGTERM", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM",
		"SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS", "SIGTRAP"}
	for _, name := range accepted {
		if _, err := l.spec(api.Assignment{WarnSignal: name}); err != nil {
			t.Errorf("job-file signal %s: %v", name, err)
		}
	}
}

func TestNewSortsMinors(t *testing.T) {
	l := testAgent([]inventory.GPU{{Index: 0, Minor: 7}, {Index: 1, Minor: 2}, {Index: 2, Minor: -1}})
	if !slices.Equal(l.allMinors, []int{2, 7}) {
		t.Errorf("all minors %v", l.allMinors)
	}
}

func TestCancelUnknownJob(t *testing.T) {
	l := testAgent(nil)
	if err := l.Cancel(9, "x"); err == nil || !strings.Contains(err.Error(), "9") {
		t.Errorf("cancel of an unknown job: %v", err)
	}
	if err := l.Signal(9, "SIGUSR1"); err == nil {
		t.Error("signal of an unknown job: no error")
	}
}
