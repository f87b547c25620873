package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// swfJob is one job of a hand-written trace.
type swfJob struct{ submit, run, procs, reqTime int64 }

// writeSWF writes a trace file with the given header lines and jobs.
func writeSWF(t *testing.T, header []string, jobs []swfJob) string {
	t.Helper()
	var b strings.Builder
	for _, h := range header {
		fmt.Fprintf(&b, "; %s\n", h)
	}
	for i, j := range jobs {
		fmt.Fprintf(&b, "%d %d -1 %d %d -1 -1 %d %d -1 1 1 1 -1 -1 -1 -1 -1\n", i+1, j.submit, j.run, j.procs, j.procs, j.reqTime)
	}
	p := filepath.Join(t.TempDir(), "t.swf")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// planners are the placers the hand-computed cases run against: the
// reference one checks the engine alone, placement.Plan the whole chain.
func planners() []struct {
	name string
	plan Planner
} {
	return []struct {
		name string
		plan Planner
	}{{"ref", refPlan}, {"placement.Plan", defaultPlan}}
}

// Hand-computed replays on tiny machines; the comments give the schedule.
func TestReplayHandComputed(t *testing.T) {
	cases := []struct {
		name    string
		nodes   int
		jobs    []swfJob
		policy  placement.Backfill
		starts  []int64 // expected start of each job, seconds
		skipRef bool    // the reference placer has no conservative
	}{
		// 4 nodes. J1 2 nodes [0,100). J2 needs 4: waits to 100. J3 2
		// nodes for 50 s arrives at 2: FCFS keeps it behind J2 (start
		// 200); EASY backfills it at 2 since it ends (52) before J2's
		// reservation (100).
		{"backfill-short/fcfs", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 4, -1}, {2, 50, 2, -1}}, placement.FCFS, []int64{0, 100, 200}, false},
		{"backfill-short/easy", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 4, -1}, {2, 50, 2, -1}}, placement.EASY, []int64{0, 100, 2}, false},
		{"backfill-short/conservative", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 4, -1}, {2, 50, 2, -1}}, placement.Conservative, []int64{0, 100, 2}, true},
		// 4 nodes. J1 2 nodes [0,100). J2 3 nodes: reserved at 100, one
		// extra node then. J3 4 nodes. J4 1 node for 500 s: EASY starts it
		// at 3 on the extra node (J2 is not delayed, J3 is: it waits to
		// J4's end, 503); conservative also protects J3 (reserved 200) so
		// J4 waits to 300, as in FCFS.
		{"extra-node/fcfs", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 3, -1}, {2, 100, 4, -1}, {3, 500, 1, -1}}, placement.FCFS, []int64{0, 100, 200, 300}, false},
		{"extra-node/easy", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 3, -1}, {2, 100, 4, -1}, {3, 500, 1, -1}}, placement.EASY, []int64{0, 100, 503, 3}, false},
		{"extra-node/conservative", 4, []swfJob{{0, 100, 2, -1}, {1, 100, 3, -1}, {2, 100, 4, -1}, {3, 500, 1, -1}}, placement.Conservative, []int64{0, 100, 200, 300}, true},
		// Estimates: J1 asks 1000 s but runs 100. J2 (4 nodes) is
		// reserved at 1000 by J1's estimate, so J3 (asks 300) backfills at
		// 2; J1 really ends at 100 and J3 at 52, so J2 starts at 100.
		{"estimate/easy", 4, []swfJob{{0, 100, 2, 1000}, {1, 100, 4, 100}, {2, 50, 2, 300}}, placement.EASY, []int64{0, 100, 2}, false},
		// Extra nodes that are free now: J0 (2 nodes, 10 s) and J1 (3
		// nodes, 100 s) start at 0; J0's nodes free at 10. J2 (3 nodes)
		// is reserved at 100 when 5 nodes are free: 2 extra. J3 (1 node,
		// 1000 s) fits an extra node now and cannot delay J2, who can
		// have J1's three nodes: EASY starts it at 12.
		{"extra-node-free-now/easy", 5, []swfJob{{0, 10, 2, -1}, {0, 100, 3, -1}, {11, 100, 3, -1}, {12, 1000, 1, -1}}, placement.EASY, []int64{0, 0, 100, 12}, false},
		// Same instant: J1 ends at 100 exactly when J2 arrives; the end is
		// released first, so J2 starts at once.
		{"end-before-arrival", 2, []swfJob{{0, 100, 2, -1}, {100, 10, 2, -1}}, placement.FCFS, []int64{0, 100}, false},
		// Runs are cut at the estimate: J1 runs min(500, 60) = 60 s.
		{"cut-at-estimate", 1, []swfJob{{0, 500, 1, 60}, {0, 10, 1, -1}}, placement.FCFS, []int64{0, 60}, false},
	}
	for _, pl := range planners() {
		for _, c := range cases {
			t.Run(pl.name+"/"+c.name, func(t *testing.T) {
				if c.skipRef && pl.name == "ref" {
					t.Skip("reference placer has no conservative backfill")
				}
				tr, err := ReadSWFFile(writeSWF(t, []string{fmt.Sprintf("MaxProcs: %d", c.nodes)}, c.jobs))
				if err != nil {
					t.Fatal(err)
				}
				nodes, jobs, _, err := SWFWorkload(tr, 0, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				out, err := Replay(nodes, jobs, policyOf(c.policy), pl.plan)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, p := range out.Placed {
					got = append(got, int64(p.Start.Sub(Epoch)/time.Second))
				}
				if !slices.Equal(got, c.starts) {
					t.Errorf("starts %v, want %v", got, c.starts)
				}
			})
		}
	}
}

// The summary of the first case above, by hand.
func TestSummarizeFormulas(t *testing.T) {
	tr, err := ReadSWFFile(writeSWF(t, []string{"MaxNodes: 4"}, []swfJob{{0, 100, 2, -1}, {1, 100, 4, -1}, {2, 50, 2, -1}}))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		policy placement.Backfill
		want   Result
	}{
		// waits 0, 99, 198; bsld 1, 199/100, 248/50; makespan 250;
		// used 2*100+4*100+2*50 = 700 node-s of 4*250.
		{placement.FCFS, Result{Jobs: 3, AvgWait: 99, MaxWait: 198, AvgBoundedSlowdown: (1 + 1.99 + 4.96) / 3, Utilization: 0.7, Makespan: 250}},
		// waits 0, 99, 0; makespan 200.
		{placement.EASY, Result{Jobs: 3, AvgWait: 33, MaxWait: 99, AvgBoundedSlowdown: (1 + 1.99 + 1) / 3, Utilization: 700.0 / 800, Makespan: 200}},
	}
	for _, c := range cases {
		t.Run(string(c.policy), func(t *testing.T) {
			got, err := SimulateSWF(tr, SWFOptions{Policy: policyOf(c.policy), Plan: refPlan})
			if err != nil {
				t.Fatal(err)
			}
			got.Wall = 0
			if !closeResult(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func closeResult(a, b Result) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.Jobs == b.Jobs && a.Skipped == b.Skipped && eq(a.AvgWait, b.AvgWait) && eq(a.MaxWait, b.MaxWait) &&
		eq(a.AvgBoundedSlowdown, b.AvgBoundedSlowdown) && eq(a.Utilization, b.Utilization) && eq(a.Makespan, b.Makespan)
}

func TestBoundedSlowdown(t *testing.T) {
	cases := []struct {
		wait, run time.Duration
		want      float64
	}{
		{0, time.Second, 1},                        // never below 1
		{0, time.Hour, 1},                          // no wait
		{90 * time.Second, 100 * time.Second, 1.9}, // (90+100)/100
		{99 * time.Second, 1 * time.Second, 10},    // (99+1)/max(1,10)
		{5 * time.Second, 2 * time.Second, 1},      // (5+2)/10 < 1
	}
	for _, c := range cases {
		if got := BoundedSlowdown(c.wait, c.run); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("BoundedSlowdown(%v, %v) = %v, want %v", c.wait, c.run, got, c.want)
		}
	}
}

// Skips are counted over the whole file, before the window is taken, and
// the window is counted in the sorted order.
func TestSWFWorkloadSelection(t *testing.T) {
	jobs := []swfJob{
		{50, 10, 1, -1}, // sorted 3rd
		{0, 10, 1, -1},  // sorted 1st
		{10, 0, 1, -1},  // skipped: run 0
		{20, 10, 0, -1}, // skipped: no procs
		{30, 10, 9, -1}, // skipped: larger than the machine
		{40, 10, 2, 5},  // sorted 2nd, runs 5 (estimate)
		{60, 10, 1, -1}, // sorted 4th
	}
	tr, err := ReadSWFFile(writeSWF(t, []string{"MaxProcs: 4", "MaxNodes: 2"}, jobs))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		n, from, m  int
		wantSubmits []int64
		wantSkipped int
		wantErr     bool
	}{
		{"all", 0, 0, 0, []int64{0, 40, 50, 60}, 3, false},
		{"window", 0, 1, 2, []int64{40, 50}, 3, false},
		{"tail", 0, 3, 100, []int64{60}, 3, false},
		{"small-machine", 1, 0, 0, []int64{0, 50, 60}, 4, false},
		{"past-end", 0, 4, 1, nil, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodes, js, skipped, err := SWFWorkload(tr, c.n, c.from, c.m)
			if c.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := max(c.n, 4); c.n == 0 && len(nodes) != want {
				t.Errorf("%d nodes, want MaxProcs %d", len(nodes), want)
			}
			if skipped != c.wantSkipped {
				t.Errorf("skipped %d, want %d", skipped, c.wantSkipped)
			}
			var got []int64
			for _, j := range js {
				got = append(got, int64(j.Submit.Sub(Epoch)/time.Second))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.wantSubmits) {
				t.Errorf("submits %v, want %v", got, c.wantSubmits)
			}
		})
	}
	_, js, _, _ := SWFWorkload(tr, 0, 1, 1)
	if j := js[0]; j.Nodes != 2 || j.Walltime != 5*time.Second || j.Run != 5*time.Second || j.ID != 2 {
		t.Errorf("job = %+v, want 2 nodes, walltime and run 5s, id 2", j)
	}
}

func TestMachineSize(t *testing.T) {
	cases := []struct {
		h    Header
		want int
	}{
		{Header{MaxProcs: 128, MaxNodes: 64}, 128},
		{Header{MaxNodes: 64}, 64},
		{Header{}, 7}, // largest request below
	}
	for _, c := range cases {
		tr := &Trace{Header: c.h, Jobs: []Record{{Run: 1, AllocProcs: 3, ReqProcs: 7}, {Run: 1, AllocProcs: 5, ReqProcs: -1}}}
		if got := MachineSize(tr); got != c.want {
			t.Errorf("MachineSize(%+v) = %d, want %d", c.h, got, c.want)
		}
	}
}

// The engine audits every decision: a placer that double-books a node is
// reported, not believed.
func TestReplayRejectsBadPlans(t *testing.T) {
	nodes := []placement.Node{{Name: "a", CPUs: 1, Memory: 1}}
	jobs := []Job{
		{Job: placement.Job{ID: 1, Submit: Epoch, Nodes: 1, PerNode: placement.Request{CPUs: 1}, Walltime: time.Minute}, Run: time.Minute},
		{Job: placement.Job{ID: 2, Submit: Epoch, Nodes: 1, PerNode: placement.Request{CPUs: 1}, Walltime: time.Minute}, Run: time.Minute},
	}
	cases := []struct {
		name string
		plan Planner
		want string
	}{
		{"double-book", func(s placement.Snapshot, _ time.Time, _ placement.Policy) placement.Decisions {
			var d placement.Decisions
			for _, j := range s.Pending {
				d.Starts = append(d.Starts, placement.Start{JobID: j.ID, Nodes: []placement.NodeAlloc{{Node: "a", CPUs: []int{0}}}})
			}
			return d
		}, "in use"},
		{"never-starts", func(placement.Snapshot, time.Time, placement.Policy) placement.Decisions {
			return placement.Decisions{}
		}, "still pending"},
		{"unknown-job", func(placement.Snapshot, time.Time, placement.Policy) placement.Decisions {
			return placement.Decisions{Starts: []placement.Start{{JobID: 9}}}
		}, "not pending"},
		{"wrong-gang", func(s placement.Snapshot, _ time.Time, _ placement.Policy) placement.Decisions {
			return placement.Decisions{Starts: []placement.Start{{JobID: s.Pending[0].ID}}}
		}, "on 0 nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Replay(nodes, jobs, placement.Policy{}, c.plan)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// On identical single-CPU nodes strict FCFS is fully determined, so the
// placer and the reference must give the very same schedule.
func TestPlanMatchesReferenceFCFS(t *testing.T) {
	tr, err := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, jobs, _, err := SWFWorkload(tr, 0, 2048, 300)
	if err != nil {
		t.Fatal(err)
	}
	pol := placement.Policy{Depth: placement.DepthFCFS}
	want, err := Replay(nodes, jobs, pol, refPlan)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Replay(nodes, jobs, pol, defaultPlan)
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		if !got.Placed[i].Start.Equal(want.Placed[i].Start) {
			t.Fatalf("job %d starts at %v, reference %v", jobs[i].ID, got.Placed[i].Start.Sub(Epoch), want.Placed[i].Start.Sub(Epoch))
		}
	}
}

// Lublin's estimates are exact, so a reservation the placer announces
// must hold: no job starts later than the first reserved start it was
// given. Checked for every policy that reserves.
func TestReservationsHoldOnTrace(t *testing.T) {
	tr, err := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, jobs, _, err := SWFWorkload(tr, 0, 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []placement.Backfill{placement.EASY, placement.Conservative} {
		t.Run(string(b), func(t *testing.T) {
			first := map[uint64]time.Time{}
			record := func(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
				d := defaultPlan(s, now, p)
				for _, w := range d.Waiting {
					if _, seen := first[w.JobID]; !seen && !w.ReservedStart.IsZero() {
						first[w.JobID] = w.ReservedStart
					}
				}
				return d
			}
			out, err := Replay(nodes, jobs, policyOf(b), record)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) == 0 {
				t.Fatal("no reservation was ever announced")
			}
			for i, j := range jobs {
				if r, ok := first[j.ID]; ok && out.Placed[i].Start.After(r) {
					t.Errorf("job %d reserved at %v started at %v", j.ID, r.Sub(Epoch), out.Placed[i].Start.Sub(Epoch))
				}
			}
		})
	}
}

// policyOf is the policy a backfilling name stands for.
func policyOf(b placement.Backfill) placement.Policy {
	d, ok := b.Depth()
	if !ok {
		panic("unknown backfill " + string(b))
	}
	return placement.Policy{Depth: d}
}
