package placement

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// EASY's reservation takes the nodes that free up by the reserved start
// before nodes that are free now, so those stay free for backfill (the
// textbook "extra nodes"); it takes free-now nodes only when it must.
func TestReservationLeavesFreeNodesForBackfill(t *testing.T) {
	single := func(n int) *fakeCluster { return newFake().cpuNodes(n, 1, 4*gib) }
	tests := []struct {
		name     string
		f        *fakeCluster
		p        Policy
		reserved []string // nodes of job 2's reservation
		start3   []string // nodes job 3 starts on now; nil: it waits
	}{
		{
			name: "busy nodes freeing at the start are reserved, free ones stay free",
			f: single(5).running(100, t0.Add(100*time.Second), alloc("cpu002", 0, 1, gib), alloc("cpu003", 0, 1, gib), alloc("cpu004", 0, 1, gib)).
				pending(job(2).nodes(3).wall(100*time.Second), job(3).wall(1000*time.Second)),
			p:        Policy{Depth: DepthEASY},
			reserved: []string{"cpu002", "cpu003", "cpu004"},
			start3:   []string{"cpu000"},
		},
		{
			name: "free-now nodes only as many as needed, lowest names",
			f: single(5).running(100, t0.Add(100*time.Second), alloc("cpu003", 0, 1, gib), alloc("cpu004", 0, 1, gib)).
				pending(job(2).nodes(4).wall(100*time.Second), job(3).wall(1000*time.Second)),
			p:        Policy{Depth: DepthEASY},
			reserved: []string{"cpu000", "cpu001", "cpu003", "cpu004"},
			start3:   []string{"cpu002"},
		},
		{
			name: "among busy nodes, those freeing last before the start",
			f: single(4).
				running(100, t0.Add(20*time.Second), alloc("cpu000", 0, 1, gib)).
				running(101, t0.Add(80*time.Second), alloc("cpu001", 0, 1, gib), alloc("cpu002", 0, 1, gib), alloc("cpu003", 0, 1, gib)).
				pending(job(2).nodes(3).wall(100*time.Second), job(3).wall(1000*time.Second)),
			p:        Policy{Depth: DepthEASY},
			reserved: []string{"cpu001", "cpu002", "cpu003"},
			start3:   nil, // cpu000 is busy now
		},
		{
			name: "conservative keeps name order (reservations must hold across passes)",
			f: single(5).running(100, t0.Add(100*time.Second), alloc("cpu002", 0, 1, gib), alloc("cpu003", 0, 1, gib), alloc("cpu004", 0, 1, gib)).
				pending(job(2).nodes(3).wall(100*time.Second), job(3).wall(1000*time.Second)),
			p:        Policy{Depth: DepthAll},
			reserved: []string{"cpu000", "cpu001", "cpu002"},
			start3:   nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.f.snapshot()
			d := Plan(s, t0, tc.p)
			checkNoOverlap(t, s, d)
			w, ok := waiting(d, 2)
			if !ok || w.ReservedStart.IsZero() {
				t.Fatalf("job 2: no reservation: %+v", d)
			}
			if !slices.Equal(w.ReservedNodes, tc.reserved) {
				t.Errorf("job 2 reserved %v, want %v", w.ReservedNodes, tc.reserved)
			}
			st, ok := started(d, 3)
			if got := nodesOf(st); ok != (tc.start3 != nil) || !slices.Equal(got, tc.start3) {
				t.Errorf("job 3 started %v (%v), want %v", got, ok, tc.start3)
			}
		})
	}
}

// The GPU best-fit step on its own.
func TestRankGPUFit(t *testing.T) {
	tests := []struct {
		want, free, total int
		fit               gpuFit
	}{
		{0, 8, 8, gpuFit{}},
		{1, 1, 8, gpuFit{0, 8}},
		{1, 4, 4, gpuFit{3, 4}},
		{2, 8, 8, gpuFit{6, 8}},
	}
	for _, tc := range tests {
		if got := rankGPUFit(tc.want, tc.free, tc.total); got != tc.fit {
			t.Errorf("rankGPUFit(%d, %d, %d) = %v, want %v", tc.want, tc.free, tc.total, got, tc.fit)
		}
	}
	order := []gpuFit{{0, 4}, {0, 8}, {1, 4}, {1, 8}, {3, 4}, {7, 8}}
	for i := range order {
		for k := range order {
			if got := order[i].less(order[k]); got != (i < k) {
				t.Errorf("%v.less(%v) = %v", order[i], order[k], got)
			}
		}
	}
}

// Small GPU jobs fill the node whose free GPUs they fit most tightly,
// counted in GPUs, and the smaller node on a tie, so 8-GPU nodes stay
// whole; the interconnect still comes before, and with
// Packing.SpareWholeNodes the "partly used first" tier too.
func TestGPUBestFitOnFreeCount(t *testing.T) {
	end := t0.Add(time.Hour)
	spare := []Scorer{Packing{SpareWholeNodes: true}}
	tests := []struct {
		name    string
		f       *fakeCluster
		scorers []Scorer
		want    string
	}{
		{
			// By share, 3 of 8 left (.375) beats 2 of 4 (.5); by count the
			// A100 leaves 2 GPUs, the H100 3.
			name: "fewest free GPUs that fit",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				running(100, end, alloc("a100-000", 0, 1, gib, 0)).
				running(101, end, alloc("h100-000", 0, 1, gib, 0, 1, 2, 3)).
				pending(job(1).gpus(1, "")),
			want: "a100-000",
		},
		{
			name: "both whole: the smaller node",
			f:    newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).pending(job(1).gpus(1, "")),
			want: "a100-000",
		},
		{
			name: "same free count: fewer GPUs in all",
			f: newFake().gpuNodes(1, "H100", 8, nvswitch).gpuNodes(1, "A100", 4, nvpairs).
				running(100, end, alloc("a100-000", 0, 1, gib, 0, 1)).
				running(101, end, alloc("h100-000", 0, 1, gib, 0, 1, 2, 3, 4, 5)).
				pending(job(1).gpus(2, "")),
			want: "a100-000",
		},
		{
			name: "SpareWholeNodes: partly used before whole free",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				running(101, end, alloc("h100-000", 0, 1, gib, 0)).
				pending(job(1).gpus(1, "")),
			scorers: spare,
			want:    "h100-000",
		},
		{
			// Nothing pending needs the A100 whole: it leaves fewer GPUs.
			name: "default: no tier, the fragmentation cost decides",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				running(101, end, alloc("h100-000", 0, 1, gib, 0)).
				pending(job(1).gpus(1, "")),
			want: "a100-000",
		},
		{
			// A pending 4-GPU job needs a whole A100 (or 4 of the H100's 7).
			name: "default: a pending 4-GPU job keeps the A100 whole",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				running(101, end, alloc("h100-000", 0, 1, gib, 0)).
				pending(job(1).gpus(1, ""), job(2).gpus(4, "").wall(2*time.Hour), job(3).gpus(4, "").wall(2*time.Hour), job(4).gpus(4, "").wall(2*time.Hour)),
			want: "h100-000",
		},
		{
			// The A100's two free GPUs are orphans of two NVLink pairs.
			name: "interconnect first",
			f: newFake().gpuNodes(1, "A100", 4, nvpairs).gpuNodes(1, "H100", 8, nvswitch).
				running(100, end, alloc("a100-000", 0, 1, gib, 0, 2)).
				running(101, end, alloc("h100-000", 0, 1, gib, 0, 1, 2, 3)).
				pending(job(1).gpus(2, "")),
			want: "h100-000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Plan(tc.f.snapshot(), t0, Policy{Depth: DepthEASY, Scorers: tc.scorers})
			st, ok := started(d, 1)
			if !ok || fmt.Sprint(nodesOf(st)) != fmt.Sprint([]string{tc.want}) {
				t.Errorf("job 1 on %v (started %v), want %s", nodesOf(st), ok, tc.want)
			}
		})
	}
}

// The reservation search (aggregate bound, cached node answers) finds the
// same earliest start as trying every candidate instant on every node.
func TestReserveMatchesBruteForce(t *testing.T) {
	checked := 0
	for seed := uint64(0); seed < 40; seed++ {
		s := randomSnapshot(seed)
		for _, j := range s.Pending[:min(len(s.Pending), 30)] {
			one := Snapshot{Nodes: s.Nodes, Running: s.Running, Pending: []Job{j}}
			d := Plan(one, t0, Policy{Depth: DepthEASY})
			if len(d.Starts) > 0 {
				continue
			}
			want, ok := bruteEarliest(one, j)
			w := d.Waiting[0]
			if ok != !w.ReservedStart.IsZero() || ok && w.ReservedStart.UnixNano() != want {
				t.Fatalf("seed %d job %d: reserved %v (%v), brute force %v (%v)", seed, j.ID, w.ReservedStart, w.Reason, time.Unix(0, want).UTC(), ok)
			}
			checked++
		}
	}
	if checked < 50 {
		t.Fatalf("only %d reservations checked", checked)
	}
}

func bruteEarliest(s Snapshot, j Job) (int64, bool) {
	c := newCluster(s, t0, newProfile(Policy{}))
	k := c.kindOf(&j)
	if r, _ := c.staticCheck(&j, k, true); r != "" {
		return 0, false
	}
	ts := []int64{c.now}
	for _, r := range c.running {
		if r.end > c.now && r.end != forever {
			ts = append(ts, r.end)
		}
	}
	slices.Sort(ts)
	for _, t := range ts {
		n := 0
		for ni := range c.nodes {
			if c.nodes[ni].state != NodeUp {
				continue
			}
			a := c.availWindow(int32(ni), t, c.endOf(&j, t), c.scratchCPU(int32(ni)))
			if _, r := c.fitOn(int32(ni), a, &j, k, true); r == "" {
				n++
			}
		}
		if n >= gangSize(&j) {
			return t, true
		}
	}
	return 0, false
}
