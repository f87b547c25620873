package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLimits(t *testing.T) {
	type want struct {
		memory     int64 // 0: no memory limit
		quota      int64 // 0: no CPU limit
		cpus       string
		pids       int64
		denyMinors []int64
	}
	tests := []struct {
		name string
		spec Spec
		want want
	}{
		{"empty", Spec{}, want{pids: DefaultPids}},
		{"memory 64MiB", Spec{Memory: 64 << 20}, want{memory: 64 << 20, pids: DefaultPids}},
		{"cpus contiguous", Spec{CPUSet: []int{2, 0, 1, 3}}, want{quota: 400000, cpus: "0-3", pids: DefaultPids}},
		{"cpus gaps", Spec{CPUSet: []int{0, 2, 3, 8}}, want{quota: 400000, cpus: "0,2-3,8", pids: DefaultPids}},
		{"one cpu", Spec{CPUSet: []int{5}}, want{quota: 100000, cpus: "5", pids: DefaultPids}},
		{"pids set", Spec{Pids: 64}, want{pids: 64}},
		{"no gpus on a 4-gpu node", Spec{AllGPUMinors: []int{3, 0, 1, 2}}, want{pids: DefaultPids, denyMinors: []int64{0, 1, 2, 3}}},
		{"two of four", Spec{GPUs: []GPUDevice{{Index: 0, Minor: 2}, {Index: 1, Minor: 0}}, AllGPUMinors: []int{0, 1, 2, 3}}, want{pids: DefaultPids, denyMinors: []int64{1, 3}}},
		{"all allocated", Spec{GPUs: []GPUDevice{{Index: 0, Minor: 0}}, AllGPUMinors: []int{0, 0}}, want{pids: DefaultPids}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Limits(tt.spec)
			if tt.want.memory == 0 && r.Memory != nil {
				t.Errorf("memory = %+v, want none", r.Memory)
			}
			if tt.want.memory != 0 {
				if r.Memory == nil || *r.Memory.Limit != tt.want.memory || *r.Memory.Swap != tt.want.memory {
					t.Errorf("memory = %+v, want limit and swap %d", r.Memory, tt.want.memory)
				}
			}
			if tt.want.quota == 0 && r.CPU != nil {
				t.Errorf("cpu = %+v, want none", r.CPU)
			}
			if tt.want.quota != 0 {
				if r.CPU == nil || *r.CPU.Quota != tt.want.quota || *r.CPU.Period != cfsPeriod || r.CPU.Cpus != tt.want.cpus {
					t.Errorf("cpu = %+v, want quota %d period %d cpus %q", r.CPU, tt.want.quota, cfsPeriod, tt.want.cpus)
				}
			}
			if r.Pids == nil || *r.Pids.Limit != tt.want.pids {
				t.Errorf("pids = %+v, want %d", r.Pids, tt.want.pids)
			}
			first := r.Devices[0]
			if !first.Allow || first.Type != "a" || *first.Major != -1 || *first.Minor != -1 || first.Access != "rwm" {
				t.Errorf("first device rule = %+v, want allow a -1:-1 rwm", first)
			}
			var denied []int64
			for _, d := range r.Devices[1:] {
				if d.Allow || d.Type != "c" || *d.Major != nvidiaMajor || d.Access != "rwm" {
					t.Errorf("device rule %+v is not a GPU deny", d)
				}
				denied = append(denied, *d.Minor)
			}
			if !slices.Equal(denied, tt.want.denyMinors) {
				t.Errorf("denied minors = %v, want %v", denied, tt.want.denyMinors)
			}
		})
	}
}

func TestJobEnv(t *testing.T) {
	base := Spec{JobID: 42, Name: "train", NodeList: []string{"n1", "n2"}, ArrayIndex: -1, RestartCount: 2,
		Env: []string{"PATH=/bin", "HPC_JOB_ID=999", "CUDA_VISIBLE_DEVICES=0,1,2,3", "HPC_ARRAY_INDEX=7", "HPC_SHIM=1"}}
	withGPUs := base
	withGPUs.GPUs = []GPUDevice{{Index: 2, Minor: 5}, {Index: 3, Minor: 4}}
	withGPUs.ArrayIndex = 4
	withGPUs.CheckpointDir = "/ckpt/42"
	tests := []struct {
		name   string
		spec   Spec
		want   map[string]string
		absent []string
	}{
		{"no gpus, no array", base, map[string]string{
			"PATH": "/bin", "HPC_JOB_ID": "42", "HPC_JOB_NAME": "train", "HPC_NODELIST": "n1,n2", "HPC_RESTART_COUNT": "2",
			"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void", "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
		}, []string{"HPC_ARRAY_INDEX", "HPC_CHECKPOINT_DIR", "HPC_SHIM"}},
		{"gpus, array, checkpoint", withGPUs, map[string]string{
			"CUDA_VISIBLE_DEVICES": "2,3", "NVIDIA_VISIBLE_DEVICES": "2,3", "HPC_ARRAY_INDEX": "4", "HPC_CHECKPOINT_DIR": "/ckpt/42",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := JobEnv(tt.spec)
			count := map[string]int{}
			for _, kv := range env {
				k, _, _ := strings.Cut(kv, "=")
				count[k]++
				if count[k] > 1 {
					t.Errorf("%s appears twice in %v", k, env)
				}
			}
			for k, v := range tt.want {
				if got, ok := envLookup(env, k); !ok || got != v {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := envLookup(env, k); ok {
					t.Errorf("%s present, want absent", k)
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	exited := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	killed := func(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }
	spec := Spec{Memory: 64 << 20, Walltime: time.Second}
	tests := []struct {
		name      string
		f         exitFacts
		state     string
		code      int
		signal    string
		reasonHas string
	}{
		{"exit 0", exitFacts{status: exited(0), spec: spec}, StateCompleted, 0, "", ""},
		{"exit 3", exitFacts{status: exited(3), spec: spec}, StateFailed, 3, "", "exit code 3"},
		{"sigkill", exitFacts{status: killed(unix.SIGKILL), spec: spec}, StateFailed, 137, "SIGKILL", "SIGKILL"},
		{"oom", exitFacts{status: killed(unix.SIGKILL), oomKills: 1, spec: spec}, StateOutOfMemory, 137, "SIGKILL", "memory limit 64MiB"},
		{"oom of a child, exit 0", exitFacts{status: exited(0), oomKills: 2, spec: spec}, StateOutOfMemory, 0, "", "OOM killer"},
		{"timeout", exitFacts{status: killed(unix.SIGTERM), timedOut: true, oomKills: 1, spec: spec}, StateTimeout, 143, "SIGTERM", "walltime 1s"},
		{"cancel wins", exitFacts{status: killed(unix.SIGKILL), cancelled: true, cancelReason: "by user", timedOut: true, spec: spec}, StateCancelled, 137, "SIGKILL", "cancelled: by user"},
		{"not found", exitFacts{status: exited(127), startErr: "command not found: nope\n", spec: spec}, StateFailed, 127, "", "command not found: nope"},
		{"fallback says oom is unknown", exitFacts{status: killed(unix.SIGKILL), isolation: IsolationNone, spec: spec}, StateFailed, 137, "SIGKILL", "cannot be detected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := classify(tt.f)
			if o.State != tt.state || o.ExitCode != tt.code || o.Signal != tt.signal || !strings.Contains(o.Reason, tt.reasonHas) {
				t.Errorf("classify = %+v, want state %s code %d signal %q reason containing %q", o, tt.state, tt.code, tt.signal, tt.reasonHas)
			}
			if strings.Contains(o.Reason, "\n") {
				t.Errorf("reason %q is not one line", o.Reason)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Spec{JobID: 1, Argv: []string{"true"}, UID: 1000, GID: 1000}
	mod := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	tests := []struct {
		name      string
		spec      Spec
		allowRoot bool
		want      error
	}{
		{"valid", ok, false, nil},
		{"root refused", mod(func(s *Spec) { s.UID = 0 }), false, ErrRootRefused},
		{"root allowed", mod(func(s *Spec) { s.UID = 0 }), true, nil},
		{"both argv and script", mod(func(s *Spec) { s.Script = "true" }), false, ErrInvalidSpec},
		{"neither", mod(func(s *Spec) { s.Argv = nil }), false, ErrInvalidSpec},
		{"relative stdout", mod(func(s *Spec) { s.Stdout = "out.txt" }), false, ErrInvalidSpec},
		{"repeated cpu", mod(func(s *Spec) { s.CPUSet = []int{1, 1} }), false, ErrInvalidSpec},
		{"negative memory", mod(func(s *Spec) { s.Memory = -1 }), false, ErrInvalidSpec},
		{"bad env", mod(func(s *Spec) { s.Env = []string{"NOEQUALS"} }), false, ErrInvalidSpec},
		{"job id 0", mod(func(s *Spec) { s.JobID = 0 }), false, ErrInvalidSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(tt.spec, tt.allowRoot)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("validate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{64 << 20: "64MiB", 3 << 30: "3GiB", 1536: "1536B", 1<<20 + 1: "1.0MiB", 0: "none", 2048: "2KiB"} {
		if got := formatBytes(in); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDescendantsByChildrenMatchesProcScan(t *testing.T) {
	// A small tree below this test process: sh -> sleep, sleep.
	cmd := osexec.Command("/bin/sh", "-c", "sleep 30 & sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self := os.Getpid()
	var fast []int
	var ok bool
	for i := 0; i < 100; i++ {
		fast, ok = descendantsByChildren(self)
		if !ok {
			t.Skip("kernel has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)")
		}
		if len(fast) >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	slices.Sort(fast)
	slow := descendantsByScan(self)
	slices.Sort(slow)
	if !slices.Equal(fast, slow) || len(fast) < 3 {
		t.Fatalf("children files found %v, /proc scan %v; want the same tree of at least 3", fast, slow)
	}
}
