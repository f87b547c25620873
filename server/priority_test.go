package server

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

// `hpcsub priority` shows the factors the placer orders the queue by: the
// account that used the cluster comes after the one that did not.
func TestPriorityReport(t *testing.T) {
	cfg := testConfig()
	cfg.Policy.Weights = placement.PriorityWeights{Priority: 1000, Age: 168, FairShare: 1000}
	cfg.FairShare = FairShare{HalfLife: time.Hour, Shares: map[string]float64{"heavy": 1, "light": 1}}
	h := newHarness(t, cfg)
	ctx := context.Background()
	heavy := h.submit(jobSrc("  account = \"heavy\"\n  priority = 500"))[0]
	light := h.submit(jobSrc("  account = \"light\""))[0]
	h.srv.mu.Lock()
	h.srv.shares.usage["heavy"] = decayedUsage{Value: 3600, At: time.Now()}
	h.srv.mu.Unlock()

	rep, err := h.client.Priority(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Jobs) != 2 || rep.Jobs[0].ID != light || rep.Jobs[1].ID != heavy {
		t.Fatalf("order %+v: want light's job first", rep.Jobs)
	}
	hf, lf := rep.Jobs[1].Factors, rep.Jobs[0].Factors
	if math.Abs(hf.FairShare-0.25) > 1e-3 || lf.FairShare != 1 || hf.Priority != 0.5 || lf.Priority != 0.1 {
		t.Errorf("factors heavy %+v light %+v: want fair-share 0.25 and 1, priority 0.5 and 0.1 (the default 100)", hf, lf)
	}
	if math.Abs(hf.Total-(1000*hf.Priority+168*hf.Age+1000*hf.FairShare)) > 1e-6 {
		t.Errorf("heavy's total %v is not the weighted sum of %+v", hf.Total, hf)
	}
	if rep.Weights.FairShare != 1000 || rep.Weights.HalfLife != "1h0m0s" || len(rep.Accounts) != 2 {
		t.Errorf("weights %+v accounts %+v", rep.Weights, rep.Accounts)
	}

	// The placer receives the same fair-share factor.
	h.srv.mu.Lock()
	snap := h.srv.snapshotLocked()
	h.srv.setFairShareLocked(snap.Pending, time.Now())
	h.srv.mu.Unlock()
	for _, p := range snap.Pending {
		want := 1.0
		if p.ID == heavy {
			want = 0.25
		}
		if math.Abs(p.FairShare-want) > 1e-3 {
			t.Errorf("placer's job %d has fair-share %v, want %v", p.ID, p.FairShare, want)
		}
	}

	one, err := h.client.Priority(ctx, heavy)
	if err != nil || len(one.Jobs) != 1 || one.Jobs[0].ID != heavy {
		t.Errorf("priority of one job = %+v, %v", one.Jobs, err)
	}
	if _, err := h.client.Priority(ctx, 999); apiStatus(err) != 404 {
		t.Errorf("priority of an unknown job: %v, want 404", err)
	}
	h.schedule()
	h.report(light, api.StateCompleted, 0)
	if _, err := h.client.Priority(ctx, light); apiStatus(err) != 409 {
		t.Errorf("priority of an ended job: %v, want 409", err)
	}
}
