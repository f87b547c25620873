package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// gpuNode is cpuNode with n 40 GiB GPUs.
func gpuNode(name string, n int) api.NodeRegistration {
	r := cpuNode(name)
	for i := range n {
		r.GPUs = append(r.GPUs, api.GPU{Index: i, UUID: name + "-gpu" + string(rune('0'+i)), Model: "NVIDIA A100-SXM4-40GB", Memory: 40 * gib})
	}
	return r
}

func measured(node string, idx int, util float64, peak int64) api.GPUUsage {
	return api.GPUUsage{Node: node, Index: idx, Utilization: &util, PeakMemory: &peak, Memory: 40 * gib, Samples: 6}
}

// What each node's agent measured of its GPUs goes, per run, into the
// job's accounting record: both parts of a two-node job, kept apart from
// a second run's, into the store, the archive and history's JSON.
func TestGPUUsageIsAccountedPerRun(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, name := range []string{"g1", "g2"} {
		if err := h.srv.AttachAgent(gpuNode(name, 2), &fakeAgent{}); err != nil {
			t.Fatal(err)
		}
	}
	id := h.submit(jobSrc("  nodes = 2\n  checkpoint {\n    max_restarts = 1\n  }\n  resources {\n    gpu { count = 2 }\n  }"))[0]
	now := time.Now()
	runs := [][]api.GPUUsage{
		{measured("g1", 0, 90, 30*gib), measured("g1", 1, 80, 20*gib), measured("g2", 0, 70, 10*gib), measured("g2", 1, 60, 5*gib)},
		{measured("g1", 0, 10, gib), measured("g1", 1, 20, gib), measured("g2", 0, 30, gib), measured("g2", 1, 40, gib)},
	}
	for run, exit := range []int{85, 0} { // 85: checkpointed, runs again
		h.schedule()
		j := h.job(id)
		if j.State != api.StateRunning || len(j.Alloc) != 2 {
			t.Fatalf("run %d: %s on %+v, want RUNNING on g1 and g2", run, j.State, j.Alloc)
		}
		for _, a := range j.Alloc {
			var mine []api.GPUUsage
			for _, g := range runs[run] {
				if g.Node == a.Node {
					mine = append(mine, g)
				}
			}
			state := api.StateCompleted
			if exit != 0 {
				state = api.StateFailed
			}
			h.srv.Report(api.Outcome{JobID: id, Node: a.Node, State: state, ExitCode: exit, End: now,
				Usage: api.Usage{ElapsedSeconds: 60, CPUSeconds: 30}, GPUUsage: mine})
		}
	}
	check := func(where string, j api.Job) {
		t.Helper()
		if len(j.Runs) != 2 {
			t.Fatalf("%s: %d runs, want 2", where, len(j.Runs))
		}
		for i, r := range j.Runs {
			got, _ := json.Marshal(r.GPUUsage)
			want, _ := json.Marshal(runs[i])
			if string(got) != string(want) {
				t.Errorf("%s: run %d GPUs\n got %s\nwant %s", where, i, got, want)
			}
		}
	}
	live, err := h.client.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	check("live", live)
	h.srv.archiveEnded(time.Now())
	hist, err := h.client.History(t.Context(), api.HistoryQuery{})
	if err != nil || len(hist.Jobs) != 1 {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	check("archived", hist.Jobs[0])
	h.restart(nil)
	archived, err := h.client.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	check("archived after a restart", archived)

	sum := api.SummarizeGPUUsage(archived.Runs)
	if sum == nil || sum.GPUs != 8 || sum.Samples != 48 || *sum.Utilization != 50 || *sum.PeakMemory != 30*gib || sum.Memory != 40*gib {
		t.Errorf("summary %+v", sum)
	}
}

// An agent cannot store GPU figures that make no sense: the sync that
// carries them is refused with the reason, nothing stored.
func TestOutcomeWithBadGPUUsageIsRefused(t *testing.T) {
	h := protoHarness(t, testConfig())
	ctx := context.Background()
	tr := h.srv.InProcess("p1")
	resp, err := tr.Register(ctx, api.RegisterRequest{Protocol: api.ProtocolVersion, Node: gpuNode("p1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	over, neg := 150.0, int64(-1)
	for i, tc := range []struct {
		name string
		gpus []api.GPUUsage
		want string
	}{
		{"utilisation over 100", []api.GPUUsage{{Index: 0, Utilization: &over}}, "outside 0..100"},
		{"negative memory", []api.GPUUsage{{Index: 0, PeakMemory: &neg}}, "negative"},
		{"index out of range", []api.GPUUsage{{Index: 5000}}, "index 5000"},
		{"too many GPUs", make([]api.GPUUsage, api.MaxNodeGPUs+1), "at most"},
	} {
		_, err := tr.Sync(ctx, api.SyncRequest{Session: resp.Session, Seq: uint64(i + 1),
			Outcomes: []api.Outcome{{JobID: 1, State: api.StateCompleted, GPUUsage: tc.gpus}}})
		if !errors.Is(err, api.ErrAgentRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
}

// A job sharing a GPU is charged its share of the GPU's time, not the
// whole GPU's: four jobs at 0.25 for an hour make one GPU-hour.
func TestSharedGPUChargedByShare(t *testing.T) {
	tests := []struct {
		name string
		gpu  string
		want float64 // GPU-seconds for 100 s
	}{
		{"whole GPU", "count = 1", 100},
		{"two whole GPUs", "count = 2", 200},
		{"a quarter of one", "share = 0.25", 25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			if err := h.srv.AttachAgent(gpuNode("g1", 2), &fakeAgent{}); err != nil {
				t.Fatal(err)
			}
			id := h.submit(jobSrc("  resources {\n    gpu {\n      " + tc.gpu + "\n    }\n  }"))[0]
			h.schedule()
			if st := h.state(id); st != api.StateRunning {
				t.Fatalf("state %s", st)
			}
			h.srv.Report(api.Outcome{JobID: id, Node: "g1", State: api.StateCompleted, End: time.Now(),
				Usage: api.Usage{ElapsedSeconds: 100}})
			j := h.job(id)
			if len(j.Runs) != 1 || j.Runs[0].Usage.GPUSeconds != tc.want || j.Usage.GPUSeconds != tc.want {
				t.Errorf("GPU-seconds: run %+v, job %+v; want %v", j.Runs, j.Usage, tc.want)
			}
		})
	}
}

// With a GPU weight, fair-share usage counts GPU-seconds as that many
// CPU-seconds (Slurm's TRESBillingWeights GRES/gpu=), for running jobs as
// they hold their GPUs and for ended ones as they are archived; without
// one (Slurm's default) only CPUs count.
func TestFairShareGPUWeight(t *testing.T) {
	for _, weight := range []float64{0, 10} {
		t.Run(fmt.Sprint("weight ", weight), func(t *testing.T) {
			cfg := testConfig()
			cfg.FairShare = FairShare{HalfLife: 1000 * time.Hour, GPUWeight: weight}
			h := newHarness(t, cfg)
			if err := h.srv.AttachAgent(gpuNode("g1", 2), &fakeAgent{}); err != nil {
				t.Fatal(err)
			}
			gpu := h.submit(jobSrc("  account = \"ml\"\n  resources {\n    gpu { count = 2 }\n  }"))[0]
			cpu := h.submit(jobSrc("  account = \"sim\""))[0]
			h.schedule()
			start := *h.job(gpu).Start
			h.srv.mu.Lock()
			running := h.srv.fairShareLocked(start.Add(100*time.Second), nil)
			h.srv.mu.Unlock()
			// One CPU each; the GPU job's 2 GPUs count weight CPUs each.
			if got, want := running["ml"].RawUsage, (1+2*weight)*100; math.Abs(got-want) > 1 {
				t.Errorf("running GPU job's usage %v, want %v", got, want)
			}
			if got := running["sim"].RawUsage; math.Abs(got-100) > 1 {
				t.Errorf("running CPU job's usage %v, want 100", got)
			}
			end := time.Now()
			for _, id := range []uint64{gpu, cpu} {
				h.srv.Report(api.Outcome{JobID: id, Node: h.job(id).Alloc[0].Node, State: api.StateCompleted, End: end,
					Usage: api.Usage{ElapsedSeconds: 50}})
			}
			h.srv.archiveEnded(end)
			h.srv.mu.Lock()
			ml, sim := h.srv.shares.usage["ml"].Value, h.srv.shares.usage["sim"].Value
			h.srv.mu.Unlock()
			if math.Abs(ml-(1+2*weight)*50) > 1e-6 || math.Abs(sim-50) > 1e-6 {
				t.Errorf("archived usage ml %v sim %v, want %v and 50", ml, sim, (1+2*weight)*50)
			}
		})
	}
}
