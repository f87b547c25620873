package server

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

func TestDecayedUsage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decayedUsage{Value: 100, At: t0}
	tests := []struct {
		at   time.Time
		want float64
	}{
		{t0, 100},
		{t0.Add(time.Hour), 50},
		{t0.Add(3 * time.Hour), 12.5},
		{t0.Add(-time.Hour), 200}, // a charge dated before At weighs more
	}
	for _, tt := range tests {
		if got := d.to(tt.at, time.Hour); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("usage at %v = %v, want %v", tt.at.Sub(t0), got, tt.want)
		}
	}
	tab := newShareTable(FairShare{HalfLife: time.Hour})
	enc, upd := tab.charged(map[string]float64{"a": 10}, t0)
	tab.install(upd)
	_, upd = tab.charged(map[string]float64{"a": 10}, t0.Add(time.Hour))
	if got := upd["a"].Value; got != 15 {
		t.Errorf("10 decayed an hour plus 10 = %v, want 15", got)
	}
	if string(enc["fairshare/a"]) == "" {
		t.Error("charged encoded nothing for the store")
	}
}

// Slurm's classic factor: 2^(-U/S) with U and S normalised over accounts.
func TestFairShareFactors(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		shares map[string]float64
		usage  map[string]float64
		want   map[string]float64
	}{
		{"nobody used anything", map[string]float64{"a": 1, "b": 1}, nil, map[string]float64{"a": 1, "b": 1}},
		{"equal use of equal shares", map[string]float64{"a": 1, "b": 1}, map[string]float64{"a": 5, "b": 5}, map[string]float64{"a": 0.5, "b": 0.5}},
		{"one used everything", map[string]float64{"a": 1, "b": 1}, map[string]float64{"a": 5}, map[string]float64{"a": 0.25, "b": 1}},
		{"use matching shares", map[string]float64{"a": 3, "b": 1}, map[string]float64{"a": 3, "b": 1}, map[string]float64{"a": 0.5, "b": 0.5}},
		{"unconfigured account gets one share", map[string]float64{"a": 1}, map[string]float64{"a": 1, "x": 1}, map[string]float64{"a": 0.5, "x": 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{jobs: map[uint64]*job{}, shares: newShareTable(FairShare{HalfLife: time.Hour, Shares: tt.shares})}
			for a, u := range tt.usage {
				s.shares.usage[a] = decayedUsage{Value: u, At: now}
			}
			got := s.fairShareLocked(now, nil)
			for a, want := range tt.want {
				if math.Abs(got[a].FairShare-want) > 1e-9 {
					t.Errorf("account %s: factor %v, want %v (%+v)", a, got[a].FairShare, want, got[a])
				}
			}
		})
	}
}

// shareSim runs the real server through a day of virtual time on one
// 8-CPU node: every half hour account "flood" submits 20 two-CPU jobs and
// account "steady" 2 (ten times fewer), each job runs half an hour, and
// the node fits 4 at once. It returns the CPU-hours each account got per
// 4-hour window.
func shareSim(t *testing.T, fairShareWeight float64) (windows []map[string]float64) {
	cfg := testConfig()
	cfg.Policy.Weights = placement.PriorityWeights{Priority: 1000, Age: 168, FairShare: fairShareWeight}
	cfg.FairShare = FairShare{HalfLife: 2 * time.Hour}
	h := newHarness(t, cfg)
	ctx := context.Background()
	flood := jobSrc("  account = \"flood\"\n  resources { cpus = 2 }\n  array { count = 20 }")
	steady := jobSrc("  account = \"steady\"\n  resources { cpus = 2 }\n  array { count = 2 }")
	const step = 30 * time.Minute
	now := time.Now()
	launched := 0
	for i := 0; i < 48; i++ {
		if i%8 == 0 {
			windows = append(windows, map[string]float64{})
		}
		h.submit(flood)
		h.submit(steady)
		h.srv.scheduleOnce(ctx, now)
		h.srv.launches.Wait()
		h.agent.mu.Lock()
		running := h.agent.launched[launched:]
		launched = len(h.agent.launched)
		h.agent.mu.Unlock()
		end := now.Add(step)
		for _, a := range running {
			j := h.job(a.JobID)
			windows[len(windows)-1][j.Account] += float64(len(a.CPUs)) * step.Hours()
			h.srv.Report(api.Outcome{JobID: a.JobID, Node: h.reg.Name, State: api.StateCompleted, Start: now, End: end,
				Usage: api.Usage{ElapsedSeconds: step.Seconds(), CPUSeconds: step.Seconds() * float64(len(a.CPUs))}})
		}
		now = end
		h.srv.archiveEnded(now)
	}
	return windows
}

func steadyShare(windows []map[string]float64) float64 {
	var steady, all float64
	for _, w := range windows {
		steady += w["steady"]
		all += w["steady"] + w["flood"]
	}
	return steady / all
}

// Two accounts of equal shares, one submitting ten times more: with
// fair-share weighed in, each gets about half of the cluster; without
// it, the queue's order hands the flooding account nearly everything.
func TestFairShareSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates a day of scheduling through the real server and store")
	}
	fair := shareSim(t, 1000)
	plain := shareSim(t, 0)
	var b strings.Builder
	fmt.Fprintf(&b, "hours   fair-share: flood steady   no fair-share: flood steady\n")
	for i := range fair {
		fmt.Fprintf(&b, "%2d-%2d   %17.0f %6.0f   %20.0f %6.0f\n", 4*i, 4*i+4, fair[i]["flood"], fair[i]["steady"], plain[i]["flood"], plain[i]["steady"])
	}
	fmt.Fprintf(&b, "steady's share of CPU-hours: %.2f with fair-share, %.2f without\n", steadyShare(fair), steadyShare(plain))
	t.Log("CPU-hours per account and 4-hour window:\n" + b.String())
	if got := steadyShare(fair); got < 0.4 || got > 0.6 {
		t.Errorf("with fair-share the steady account got %.2f of the CPU-hours, want about half", got)
	}
	// From the second window on, every window is shared about evenly.
	for i, w := range fair[1:] {
		if got := w["steady"] / (w["steady"] + w["flood"]); got < 0.35 || got > 0.65 {
			t.Errorf("window %d: steady got %.2f, want about half", i+1, got)
		}
	}
	if got := steadyShare(plain); got > 0.2 {
		t.Errorf("without fair-share the steady account got %.2f: the simulation no longer shows what fair-share changes", got)
	}
}
