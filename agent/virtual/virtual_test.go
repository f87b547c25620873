package virtual

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
)

func TestPlanFor(t *testing.T) {
	tests := []struct {
		name     string
		walltime time.Duration
		env      []string
		want     plan
	}{
		{"default is the walltime", time.Minute, nil, plan{d: time.Minute, state: api.StateCompleted}},
		{"runtime in seconds", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=2.5"}, plan{d: 2500 * time.Millisecond, state: api.StateCompleted}},
		{"zero runtime", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=0"}, plan{d: 0, state: api.StateCompleted}},
		{"last one wins", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=9", "HPC_VIRTUAL_RUNTIME=1"}, plan{d: time.Second, state: api.StateCompleted}},
		{"beyond the walltime times out at it", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=61"},
			plan{d: time.Minute, state: api.StateTimeout, reason: "walltime reached (virtual run)"}},
		{"exit code fails", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=1", "HPC_VIRTUAL_EXIT=3"},
			plan{d: time.Second, state: api.StateFailed, code: 3, reason: "exited with code 3 (virtual run)"}},
		{"exit 0 completes", time.Minute, []string{"HPC_VIRTUAL_EXIT=0"}, plan{d: time.Minute, state: api.StateCompleted}},
		{"not a number", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=soon"},
			plan{state: api.StateFailed, code: 1, reason: `HPC_VIRTUAL_RUNTIME="soon": want a number of seconds from 0 to 31536000`}},
		{"negative", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=-1"},
			plan{state: api.StateFailed, code: 1, reason: `HPC_VIRTUAL_RUNTIME="-1": want a number of seconds from 0 to 31536000`}},
		{"NaN", time.Minute, []string{"HPC_VIRTUAL_RUNTIME=NaN"},
			plan{state: api.StateFailed, code: 1, reason: `HPC_VIRTUAL_RUNTIME="NaN": want a number of seconds from 0 to 31536000`}},
		{"bad exit", time.Minute, []string{"HPC_VIRTUAL_EXIT=300"},
			plan{state: api.StateFailed, code: 1, reason: `HPC_VIRTUAL_EXIT="300": want an exit code from 0 to 255`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planFor(api.Assignment{Walltime: tt.walltime, Env: append([]string{"PATH=/bin"}, tt.env...)})
			if got != tt.want {
				t.Errorf("planFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// recorder collects a node's outcomes.
type recorder struct {
	mu  sync.Mutex
	out []api.Outcome
	ch  chan api.Outcome
}

func newRecorder() *recorder { return &recorder{ch: make(chan api.Outcome, 100)} }

func (r *recorder) report(o api.Outcome) {
	r.mu.Lock()
	r.out = append(r.out, o)
	r.mu.Unlock()
	r.ch <- o
}

func (r *recorder) next(t *testing.T) api.Outcome {
	t.Helper()
	select {
	case o := <-r.ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome within 10 s")
		return api.Outcome{}
	}
}

func TestNodeLifecycle(t *testing.T) {
	rec := newRecorder()
	n := New("v-0001", rec.report, nil)
	ctx := context.Background()
	short := api.Assignment{JobID: 1, Walltime: time.Hour, Env: []string{"HPC_VIRTUAL_RUNTIME=0.01"}}
	long := api.Assignment{JobID: 2, Walltime: time.Hour}
	if err := n.Launch(ctx, short); err != nil {
		t.Fatal(err)
	}
	if err := n.Launch(ctx, short); err == nil {
		t.Error("a second launch of job 1 was accepted")
	}
	if err := n.Launch(ctx, long); err != nil {
		t.Fatal(err)
	}
	o := rec.next(t)
	if o.JobID != 1 || o.State != api.StateCompleted || o.Node != "v-0001" || o.End.Before(o.Start) || o.Usage.ElapsedSeconds < 0.01 {
		t.Errorf("outcome of the short job = %+v", o)
	}
	if err := n.Signal(2, "SIGCONT"); err != nil {
		t.Errorf("signal a held job: %v", err)
	}
	if err := n.Cancel(2, "cancelled by user"); err != nil {
		t.Fatal(err)
	}
	if err := n.Cancel(2, "again"); err != nil {
		t.Errorf("a second cancel before release: %v", err)
	}
	o = rec.next(t)
	if o.JobID != 2 || o.State != api.StateCancelled || o.Reason != "cancelled by user" {
		t.Errorf("outcome of the cancelled job = %+v", o)
	}
	select {
	case o := <-rec.ch:
		t.Errorf("a second outcome: %+v", o)
	case <-time.After(50 * time.Millisecond):
	}
	for _, id := range []uint64{1, 2} {
		if !n.held(id) {
			t.Errorf("job %d not held before its release", id)
		}
		if err := n.Release(id); err != nil {
			t.Fatal(err)
		}
		if n.held(id) {
			t.Errorf("job %d still held after its release", id)
		}
	}
	if err := n.Release(3); err != nil {
		t.Errorf("release of a job the node never had: %v", err)
	}
	if err := n.Cancel(1, "x"); err == nil {
		t.Error("cancel of a released job succeeded")
	}
	if err := n.Signal(1, "SIGUSR1"); err == nil {
		t.Error("signal of a released job succeeded")
	}
}

func TestSignal(t *testing.T) {
	tests := []struct {
		sig   string
		ends  bool
		code  int
		isErr bool
	}{
		{"SIGCONT", false, 0, false},
		{"SIGWINCH", false, 0, false},
		{"SIGTERM", true, 143, false},
		{"SIGKILL", true, 137, false},
		{"SIGUSR1", true, 138, false},
		{"SIGBOGUS", false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.sig, func(t *testing.T) {
			rec := newRecorder()
			n := New("v", rec.report, nil)
			if err := n.Launch(context.Background(), api.Assignment{JobID: 1, Walltime: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if err := n.Signal(1, tt.sig); (err != nil) != tt.isErr {
				t.Fatalf("Signal(%s) = %v, want error %v", tt.sig, err, tt.isErr)
			}
			if !tt.ends {
				select {
				case o := <-rec.ch:
					t.Fatalf("%s ended the job: %+v", tt.sig, o)
				case <-time.After(50 * time.Millisecond):
				}
				return
			}
			o := rec.next(t)
			if o.State != api.StateFailed || o.ExitCode != tt.code || o.Signal != tt.sig {
				t.Errorf("after %s: %+v, want FAILED %d %s", tt.sig, o, tt.code, tt.sig)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	f, err := nodeclass.ReadFile("../../docs/examples/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n    int
		want map[string]int
	}{
		{1, map[string]int{"cpu": 1}}, // the largest class comes first
		{10, map[string]int{"dgx-a100": 1, "l4": 3, "cpu": 6}},
		{100, map[string]int{"dgx-a100": 10, "l4": 30, "cpu": 60}},
		{1000, map[string]int{"dgx-a100": 100, "l4": 300, "cpu": 600}},
	}
	for _, tt := range tests {
		nodes, err := Spread(f, tt.n)
		if err != nil {
			t.Fatalf("Spread(%d): %v", tt.n, err)
		}
		got := map[string]int{}
		names := map[string]bool{}
		for _, nd := range nodes {
			got[nd.Class]++
			names[nd.Name] = true
		}
		if !reflect.DeepEqual(got, tt.want) || len(names) != tt.n {
			t.Errorf("Spread(%d) = %v in %d names, want %v", tt.n, got, len(names), tt.want)
		}
	}
	for _, n := range []int{0, -1, 1001} {
		if _, err := Spread(f, n); err == nil || !strings.Contains(err.Error(), "ask for 1 to 1000") {
			t.Errorf("Spread(%d) err = %v", n, err)
		}
	}
}

func TestRegistration(t *testing.T) {
	f, err := nodeclass.ReadFile("../../docs/examples/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	reg := Registration(f.Nodes()[0])
	if reg.Name != "dgx-a100-0001" || len(reg.CPUIDs) != 256 || reg.CPUIDs[255] != 255 || len(reg.GPUs) != 8 || reg.Isolation != Isolation || !reg.Virtual {
		t.Errorf("registration = %+v", reg)
	}
	if g := reg.GPUs[7]; g.UUID != "GPU-virtual-dgx-a100-0001-7" || g.NUMANode != 5 || g.Model != "NVIDIA A100-SXM4-80GB" {
		t.Errorf("GPU 7 = %+v", g)
	}
}
