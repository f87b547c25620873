package placement

import (
	"errors"
	"math/bits"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// bruteBest tries every subset of cand of size k, the plain way.
func bruteBest(links [][]resources.Link, free, cand uint64, k int, nvlink bool) (uint64, bool) {
	var best uint64
	var bq setQuality
	ok := false
	n := len(links)
	for s := uint64(0); s < 1<<n; s++ {
		if s&^cand != 0 || bits.OnesCount64(s) != k {
			continue
		}
		q, good := quality(links, free, s, nvlink)
		if !good {
			continue
		}
		// Ties go to the lowest ids: compare sets by their lowest differing id.
		if !ok || q.better(bq) || (!bq.better(q) && lowerIDs(s, best)) {
			best, bq, ok = s, q, true
		}
	}
	return best, ok
}

func lowerIDs(a, b uint64) bool {
	d := a ^ b
	return d != 0 && a&(d&-d) != 0
}

func TestBestGPUSetMatchesBruteForce(t *testing.T) {
	topos := map[string][][]resources.Link{
		"nvswitch8": nvswitch(8), "pairs4": nvpairs(4), "pairs8": nvpairs(8),
		"pcie8": pcie(8), "twosocket8": twoSocket(8),
	}
	for name, links := range topos {
		n := len(links)
		all := uint64(1)<<n - 1
		for free := uint64(0); free <= all; free++ {
			for k := 1; k <= bits.OnesCount64(free); k++ {
				for _, nv := range []bool{false, true} {
					want, wok := bruteBest(links, free, free, k, nv)
					got, _, ok := bestGPUSet(links, free, free, k, nv)
					if ok != wok || got != want {
						t.Fatalf("%s free=%08b k=%d nvlink=%v: got %08b %v, brute force %08b %v", name, free, k, nv, got, ok, want, wok)
					}
				}
			}
		}
	}
}

func TestBestGPUSetChoices(t *testing.T) {
	tests := []struct {
		name   string
		links  [][]resources.Link
		free   uint64
		k      int
		nvlink bool
		want   uint64
		ok     bool
	}{
		{"pair kept whole: orphan taken", nvpairs(4), 0b1110, 1, false, 0b0010, true},
		{"nvlink pair", nvpairs(4), 0b1111, 2, true, 0b0011, true},
		{"no nvlink pair left", nvpairs(4), 0b0101, 2, true, 0, false},
		{"same socket", twoSocket(8), 0b11110001, 2, false, 0b00110000, true},
		{"four on one socket", twoSocket(8), 0b11111110, 4, false, 0b11110000, true},
		{"nvswitch lowest ids", nvswitch(8), 0b11111111, 3, true, 0b00000111, true},
	}
	for _, tc := range tests {
		got, _, ok := bestGPUSet(tc.links, tc.free, tc.free, tc.k, tc.nvlink)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %b %v, want %b %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFeasible(t *testing.T) {
	nodes := newFake().cpuNodes(2, 32, 128*gib, "ib").gpuNodes(1, "A100", 4, nvpairs).
		gpuNodes(1, "H100", 8, nvswitch).state("h100-000", NodeDraining).nodes
	tests := []struct {
		name string
		j    *jobB
		want Reason
	}{
		{"fits", job(1).cpus(32), ""},
		{"draining node counts", job(1).gpus(8, "H100"), ""},
		{"too many cpus", job(1).cpus(200), ReasonTooLarge},
		{"feature", job(1).feat("ib", "fast"), ReasonNoNodeWithFeature},
		{"gpu model", job(1).gpus(1, "V100"), ReasonGPUModel},
		{"gpu memory", job(1).gpus(1, "A100").gpuMem(100 * gib), ReasonGPUModel},
		{"too many gpus", job(1).gpus(6, "A100"), ReasonTooLarge},
		{"nvlink four on pairs", job(1).gpus(4, "A100").nvlink(), ReasonGPUTopology},
		{"gang too wide", job(1).nodes(3).cpus(16).feat("ib"), ReasonNodes},
		{"gang", job(1).nodes(2).cpus(16).feat("ib"), ""},
	}
	for _, tc := range tests {
		err := Feasible(nodes, tc.j.Job)
		var rej *Rejection
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &rej) || rej.Reason != tc.want):
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestEASYBackfill(t *testing.T) {
	// Two 8-cpu nodes. cpu000 is busy for an hour; job 1 needs both nodes
	// and is reserved for t0+1h. Job 2 fits now but runs 2h on cpu001:
	// it would delay job 1. Job 3 is short and backfills. Job 4 needs
	// memory the reservation leaves free on cpu001 ("extra" resources).
	f := newFake().cpuNodes(2, 8, 64*gib).
		running(100, t0.Add(time.Hour), alloc("cpu000", 0, 8, 8*gib)).
		pending(job(1).nodes(2).cpus(6).mem(8*gib),
			job(2).cpus(4).wall(2*time.Hour),
			job(3).cpus(4).wall(30*time.Minute),
			job(4).cpus(2).mem(8*gib).wall(5*time.Hour))
	for _, p := range []Policy{{Depth: DepthEASY}, {Depth: DepthAll}} {
		d := Plan(f.snapshot(), t0, p)
		w, _ := waiting(d, 1)
		if !w.ReservedStart.Equal(t0.Add(time.Hour)) || len(w.ReservedNodes) != 2 {
			t.Errorf("depth %d: job 1 reservation = %v on %v", p.Depth, w.ReservedStart, w.ReservedNodes)
		}
		if w, _ := waiting(d, 2); w.Reason != ReasonReservation {
			t.Errorf("depth %d: job 2 = %+v, want Reservation", p.Depth, w)
		}
		for _, id := range []uint64{3, 4} {
			if _, ok := started(d, id); !ok {
				t.Errorf("depth %d: job %d did not backfill: %+v", p.Depth, id, d.Waiting)
			}
		}
	}
	// Under fcfs nothing passes job 1.
	d := Plan(f.snapshot(), t0, Policy{Depth: DepthFCFS})
	if len(d.Starts) != 0 {
		t.Errorf("fcfs started %v", d.Starts)
	}
}

func TestConservativeReservesEveryBlockedJob(t *testing.T) {
	f := newFake().cpuNodes(1, 8, 64*gib).
		running(100, t0.Add(time.Hour), alloc("cpu000", 0, 8, 8*gib)).
		pending(job(1).cpus(8), job(2).cpus(8), job(3).cpus(8), job(4).cpus(1).wall(10*time.Hour))
	d := Plan(f.snapshot(), t0, Policy{Depth: 2})
	want := map[uint64]time.Time{1: t0.Add(time.Hour), 2: t0.Add(2 * time.Hour), 3: {}, 4: {}}
	for id, at := range want {
		w, ok := waiting(d, id)
		if !ok || !w.ReservedStart.Equal(at) {
			t.Errorf("job %d: %+v, want reserved %v", id, w, at)
		}
	}
	if w, _ := waiting(d, 4); w.Reason != ReasonResources {
		t.Errorf("job 4 = %+v, want Resources", w)
	}
}
