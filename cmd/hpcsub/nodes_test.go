package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

func sampleNodes() []api.Node {
	gpus := func(model string, used ...bool) []api.GPU {
		out := make([]api.GPU, len(used))
		for i, u := range used {
			out[i] = api.GPU{Index: i, Model: model, Memory: 80 << 30, Used: u}
		}
		return out
	}
	return []api.Node{
		{Name: "gpu02", State: "DRAINING", Reason: "swap HBM", CPUs: 64, CPUsUsed: 32, Memory: 512 << 30, MemoryUsed: 100 << 30,
			GPUs: gpus("NVIDIA H100 80GB HBM3", true, true, false, false), Isolation: "cgroup-v2", Checkpoint: []string{"signal"}},
		{Name: "cpu01", State: "IDLE", CPUs: 16, Memory: 64 << 30, Isolation: "cgroup-v1", Checkpoint: []string{"signal", "criu"}, Features: []string{"ib", "avx512"}, AgentVersion: "0.7.0"},
		{Name: "gpu01", State: "ALLOCATED", CPUs: 64, CPUsUsed: 64, Memory: 512 << 30, MemoryUsed: 3 << 29,
			GPUs: gpus("NVIDIA A100-SXM4-40GB", true, true), Isolation: "none"},
	}
}

func TestNodes(t *testing.T) {
	f := newFakeServer(t)
	f.nodes = sampleNodes()
	f.nodes[0].GPUs[3].OutOfService = "drained: XID 79"
	r := hpcsub("--addr", f.addr, "nodes")
	want := "" +
		"NAME   STATE      CPUS   MEMORY         GPUS                         FEATURES   HEARTBEAT  VERSION  ISOLATION  CHECKPOINT   REASON\n" +
		"cpu01  IDLE       0/16   0B/64GiB       -                            ib,avx512  -          0.7.0    cgroup-v1  signal,criu  -\n" +
		"gpu01  ALLOCATED  64/64  1.5GiB/512GiB  2/2 A100-SXM4-40GB           -          -          -        none       -            -\n" +
		"gpu02  DRAINING   32/64  100GiB/512GiB  2/4 H100 80GB HBM3 (out: 3)  -          -          -        cgroup-v2  signal       swap HBM; GPU 3 drained: XID 79\n"
	if r.code != 0 || r.stderr != "" || r.stdout != want {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}

	r = hpcsub("--addr", f.addr, "nodes", "--json")
	if r.code != 0 {
		t.Fatalf("nodes --json: exit %d, stderr %q", r.code, r.stderr)
	}
	nodes := sampleNodes()
	nodes[0].GPUs[3].OutOfService = "drained: XID 79"
	equalJSON(t, r.stdout, []api.Node{nodes[1], nodes[2], nodes[0]})
}

func TestNodeDrainResume(t *testing.T) {
	tests := []struct {
		args      []string
		code      int
		stdout    string
		stderr    string
		wantDrain *api.DrainRequest
	}{
		{[]string{"node", "drain", "gpu07", "--reason", "swap HBM"}, 0, "node gpu07 DRAINING\n", "",
			&api.DrainRequest{Reason: "swap HBM"}},
		{[]string{"node", "drain", "--requeue", "--reason=swap HBM", "gpu07"}, 0, "node gpu07 DRAINING\n", "",
			&api.DrainRequest{Reason: "swap HBM", Requeue: true}},
		{[]string{"node", "resume", "gpu07"}, 0, "node gpu07 IDLE\n", "", nil},
		{[]string{"node", "drain", "locked", "--reason", "x"}, 1, "",
			"hpcsub: node locked: only admins may drain or resume nodes\n", nil},
		{[]string{"node", "resume", "locked"}, 1, "",
			"hpcsub: node locked: only admins may drain or resume nodes\n", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeServer(t)
			f.forbidden["locked"] = true
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.wantDrain != nil && f.drains["gpu07"] != *tt.wantDrain {
				t.Errorf("drain request = %+v, want %+v", f.drains["gpu07"], *tt.wantDrain)
			}
		})
	}
}

// A usage mistake is answered without a server: the same one line
// whether or not one is reachable.
func TestNodeDrainUsageBeforeConnecting(t *testing.T) {
	r := hpcsub("--addr", "https://127.0.0.1:1", "node", "drain", "gpu07", "--gpu", "3", "--requeue", "--reason", "XID 79")
	if r.code != 2 || !strings.Contains(r.stderr, "--requeue drains the whole node") {
		t.Errorf("exit %d, stderr %q; want 2 and the --requeue usage line", r.code, r.stderr)
	}
}

func TestFormatElapsed(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0:00"},
		{0, "0:00"},
		{59 * time.Second, "0:59"},
		{61 * time.Second, "1:01"},
		{time.Hour, "1:00:00"},
		{25*time.Hour + 2*time.Minute + 3*time.Second, "1-01:02:03"},
	}
	for _, tt := range tests {
		if got := formatElapsed(tt.d); got != tt.want {
			t.Errorf("formatElapsed(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestSignalNumber(t *testing.T) {
	tests := map[string]int{"SIGKILL": 9, "KILL": 9, "sigterm": 15, "9": 9, "SIGNOPE": 0, "": 0, "200": 0}
	for in, want := range tests {
		if got := signalNumber(in); got != want {
			t.Errorf("signalNumber(%q) = %d, want %d", in, got, want)
		}
	}
}
