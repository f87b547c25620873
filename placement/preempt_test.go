package placement

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// victimRun is a running job for preemption tests: priority, preemptible,
// and its last checkpoint ago before t0.
func victimRun(id uint64, prio int, preemptible bool, ago time.Duration, allocs ...NodeAlloc) Running {
	return Running{JobID: id, End: t0.Add(time.Hour), Nodes: allocs, Priority: prio, Preemptible: preemptible, Since: t0.Add(-ago)}
}

func TestPreemption(t *testing.T) {
	type want struct {
		victims []uint64 // nil: no preemption
		nodes   []string
	}
	tests := []struct {
		name    string
		nodes   *fakeCluster
		running []Running
		job     *jobB
		want    want
	}{
		{"a lower-priority preemptible job makes room",
			newFake().cpuNodes(1, 4, 16*gib),
			[]Running{victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 4, 8*gib))},
			job(10).cpus(4).prio(100), want{[]uint64{1}, []string{"cpu000"}}},
		{"a job that is not preemptible stays",
			newFake().cpuNodes(1, 4, 16*gib),
			[]Running{victimRun(1, 50, false, time.Hour, alloc("cpu000", 0, 4, 8*gib))},
			job(10).cpus(4).prio(100), want{}},
		{"equal priority is never preempted",
			newFake().cpuNodes(1, 4, 16*gib),
			[]Running{victimRun(1, 100, true, time.Hour, alloc("cpu000", 0, 4, 8*gib))},
			job(10).cpus(4).prio(100), want{}},
		{"higher priority is never preempted",
			newFake().cpuNodes(1, 4, 16*gib),
			[]Running{victimRun(1, 500, true, time.Hour, alloc("cpu000", 0, 4, 8*gib))},
			job(10).cpus(4).prio(100), want{}},
		{"fewest victims: one big job rather than two small",
			newFake().cpuNodes(2, 4, 16*gib),
			[]Running{
				victimRun(1, 50, true, time.Minute, alloc("cpu000", 0, 2, gib)),
				victimRun(2, 50, true, time.Minute, alloc("cpu000", 2, 4, gib)),
				victimRun(3, 50, true, 10*time.Hour, alloc("cpu001", 0, 4, gib)),
			},
			job(10).cpus(4).prio(100), want{[]uint64{3}, []string{"cpu001"}}},
		{"cheapest: the victim that checkpointed last loses least",
			newFake().cpuNodes(2, 4, 16*gib),
			[]Running{
				victimRun(1, 50, true, 3*time.Hour, alloc("cpu000", 0, 4, gib)),
				victimRun(2, 50, true, 5*time.Minute, alloc("cpu001", 0, 4, gib)),
			},
			job(10).cpus(4).prio(100), want{[]uint64{2}, []string{"cpu001"}}},
		{"only as many victims as needed on the node",
			newFake().cpuNodes(1, 4, 16*gib),
			[]Running{
				victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 2, gib)),
				victimRun(2, 50, true, 2*time.Hour, alloc("cpu000", 2, 4, gib)),
			},
			job(10).cpus(2).prio(100), want{[]uint64{1}, []string{"cpu000"}}},
		{"GPUs: the victims must free the GPUs too",
			newFake().gpuNodes(1, "H100", 4, nvswitch),
			[]Running{
				victimRun(1, 50, true, time.Minute, alloc("h100-000", 0, 8, gib, 0, 1)),
				victimRun(2, 50, true, time.Hour, alloc("h100-000", 8, 16, gib, 2, 3)),
				victimRun(3, 50, true, time.Second, alloc("h100-000", 16, 64, gib)),
			},
			job(10).gpus(3, "H100").prio(100), want{[]uint64{1, 2}, []string{"h100-000"}}},
		{"a gang preempts on as many nodes as it needs",
			newFake().cpuNodes(3, 4, 16*gib),
			[]Running{
				victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 4, gib)),
				victimRun(2, 50, true, 2*time.Hour, alloc("cpu001", 0, 4, gib)),
				victimRun(3, 50, true, 3*time.Hour, alloc("cpu002", 0, 4, gib)),
			},
			job(10).cpus(4).nodes(2).prio(100), want{[]uint64{1, 2}, []string{"cpu000", "cpu001"}}},
		{"a job that fits now starts and preempts nothing",
			newFake().cpuNodes(2, 4, 16*gib),
			[]Running{victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 4, gib))},
			job(10).cpus(4).prio(100), want{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.nodes.pending(tc.job).snapshot()
			s.Running = tc.running
			for _, p := range []Policy{{Depth: DepthEASY}, {Depth: DepthFCFS}, {Depth: DepthAll}} {
				d := Plan(s, t0, p)
				if tc.want.victims == nil {
					if len(d.Preemptions) != 0 {
						t.Fatalf("%+v: preempted %+v", p, d.Preemptions)
					}
					continue
				}
				if len(d.Preemptions) != 1 {
					t.Fatalf("%+v: preemptions %+v, want victims %v", p, d.Preemptions, tc.want.victims)
				}
				pr := d.Preemptions[0]
				if pr.JobID != tc.job.ID || !slices.Equal(pr.Victims, tc.want.victims) || !slices.Equal(pr.Nodes, tc.want.nodes) || pr.Detail == "" {
					t.Fatalf("%+v: preemption %+v, want victims %v on %v", p, pr, tc.want.victims, tc.want.nodes)
				}
				if w, ok := waiting(d, tc.job.ID); !ok || w.Reason != ReasonPreempting {
					t.Fatalf("%+v: preemptor waits with %+v", p, w)
				}
			}
		})
	}
}

// Victims already being stopped free the room: no further job is
// preempted for it while they checkpoint.
func TestPreemptionWaitsForStoppingVictims(t *testing.T) {
	s := newFake().cpuNodes(1, 4, 16*gib).pending(job(10).cpus(4).prio(100)).snapshot()
	stopping := victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 2, gib))
	stopping.Stopping = true
	s.Running = []Running{stopping, victimRun(2, 50, true, time.Hour, alloc("cpu000", 2, 4, gib))}
	d := Plan(s, t0, Policy{Depth: DepthEASY})
	if len(d.Preemptions) != 1 || !slices.Equal(d.Preemptions[0].Victims, []uint64{2}) {
		t.Fatalf("preemptions %+v, want only job 2 (job 1 is stopping already)", d.Preemptions)
	}
	s.Running[1].Stopping = true
	d = Plan(s, t0, Policy{Depth: DepthEASY})
	if len(d.Preemptions) != 0 {
		t.Fatalf("preempted %+v while the victims are stopping", d.Preemptions)
	}
	if w, _ := waiting(d, 10); w.Reason != ReasonPreempting {
		t.Fatalf("preemptor waits with %+v", w)
	}
}

// Two preemptors of one pass never pick the same victim.
func TestPreemptorsShareNoVictim(t *testing.T) {
	s := newFake().cpuNodes(2, 4, 16*gib).pending(job(10).cpus(4).prio(300), job(11).cpus(4).prio(200)).snapshot()
	s.Running = []Running{
		victimRun(1, 50, true, time.Hour, alloc("cpu000", 0, 4, gib)),
		victimRun(2, 50, true, 2*time.Hour, alloc("cpu001", 0, 4, gib)),
	}
	d := Plan(s, t0, Policy{Depth: DepthAll})
	if len(d.Preemptions) != 2 || d.Preemptions[0].Victims[0] == d.Preemptions[1].Victims[0] {
		t.Fatalf("preemptions %+v, want two with different victims", d.Preemptions)
	}
}

// randomPreemptSnapshot is randomSnapshot with random priorities and
// preemptible running jobs, their last checkpoints at random times.
func randomPreemptSnapshot(seed uint64) Snapshot {
	s := randomSnapshot(seed)
	r := rand.New(rand.NewPCG(seed, 11))
	for i := range s.Running {
		s.Running[i].Priority = r.IntN(5) * 100
		s.Running[i].Preemptible = r.IntN(3) > 0
		s.Running[i].Since = t0.Add(-time.Duration(r.IntN(7200)) * time.Second)
	}
	for i := range s.Pending {
		s.Pending[i].Priority = r.IntN(5) * 100
	}
	return s
}

// Properties of preemption over random clusters and queues: a preemptor
// only displaces preemptible jobs of strictly lower priority, each victim
// once; the decisions are deterministic and independent of input order;
// and there is no ping-pong: once the preemption is carried out (victims
// back in the queue, the preemptor running in their place), no victim
// preempts its preemptor.
func TestPropertyPreemption(t *testing.T) {
	total := 0
	for seed := range uint64(60) {
		s := randomPreemptSnapshot(seed)
		for _, p := range allPolicies {
			d := Plan(s, t0, p)
			total += len(d.Preemptions)
			checkNoOverlap(t, s, d)
			running := map[uint64]Running{}
			for _, r := range s.Running {
				running[r.JobID] = r
			}
			seen := map[uint64]bool{}
			for _, pr := range d.Preemptions {
				j := jobByID(s, pr.JobID)
				for _, v := range pr.Victims {
					r := running[v]
					if !r.Preemptible || r.Priority >= j.Priority {
						t.Fatalf("seed %d %+v: job %d (priority %d) preempts job %d (priority %d, preemptible %v)",
							seed, p, j.ID, j.Priority, v, r.Priority, r.Preemptible)
					}
					if seen[v] {
						t.Fatalf("seed %d %+v: job %d preempted twice", seed, p, v)
					}
					seen[v] = true
				}
				if _, ok := started(d, pr.JobID); ok {
					t.Fatalf("seed %d: job %d both starts and preempts", seed, pr.JobID)
				}
				checkNoPingPong(t, s, d, pr, p)
			}
			sh := s
			sh.Running = slices.Clone(s.Running)
			rand.New(rand.NewPCG(seed, 5)).Shuffle(len(sh.Running), func(a, b int) { sh.Running[a], sh.Running[b] = sh.Running[b], sh.Running[a] })
			if again := Plan(sh, t0, p); !reflect.DeepEqual(d.Preemptions, again.Preemptions) {
				t.Fatalf("seed %d %+v: preemptions depend on the order of running jobs", seed, p)
			}
		}
	}
	if total == 0 {
		t.Fatal("no preemption in any random case: the property was never exercised")
	}
	t.Logf("%d preemptions checked", total)
}

// checkNoPingPong carries out preemption pr (its victims requeued with
// their priorities, the preemptor running on their resources) and plans
// again: no victim may preempt the preemptor.
func checkNoPingPong(t *testing.T, s Snapshot, d Decisions, pr Preemption, p Policy) {
	t.Helper()
	victims := map[uint64]bool{}
	for _, v := range pr.Victims {
		victims[v] = true
	}
	next := Snapshot{Nodes: s.Nodes}
	for _, r := range s.Running {
		if victims[r.JobID] {
			next.Pending = append(next.Pending, Job{ID: r.JobID, Priority: r.Priority, Submit: t0.Add(-time.Hour), Nodes: len(r.Nodes),
				PerNode: Request{CPUs: len(r.Nodes[0].CPUs), Memory: r.Nodes[0].Memory, GPU: GPURequest{Count: len(r.Nodes[0].GPUs)}}, Walltime: time.Hour})
			continue
		}
		next.Running = append(next.Running, r)
	}
	j := jobByID(s, pr.JobID)
	var allocs []NodeAlloc
	for _, r := range s.Running {
		if victims[r.JobID] {
			allocs = append(allocs, r.Nodes...)
		}
	}
	// The preemptor runs, preemptible too, on everything its victims held.
	next.Running = append(next.Running, Running{JobID: j.ID, End: t0.Add(2 * time.Hour), Nodes: allocs, Priority: j.Priority, Preemptible: true, Since: t0})
	d2 := Plan(next, t0.Add(time.Minute), p)
	for _, pr2 := range d2.Preemptions {
		if victims[pr2.JobID] && slices.Contains(pr2.Victims, j.ID) {
			t.Fatalf("ping-pong: job %d preempted %d, then %d preempts %d back", j.ID, pr2.JobID, pr2.JobID, j.ID)
		}
	}
}

// TestPreemptShortcutsChangeNothing: the shortcuts that skip preemption
// searches bound to fail (no victim left that could serve the job, the
// same request failed earlier in the pass at a priority as high) give
// exactly the decisions of the full search, over random queues full of
// repeated requests with victims being stopped and victims to pay for.
func TestPreemptShortcutsChangeNothing(t *testing.T) {
	preempting := 0
	for seed := range uint64(40) {
		s := randomPreemptSnapshot(seed)
		r := rand.New(rand.NewPCG(seed, 13))
		for i := range s.Running {
			s.Running[i].Stopping = r.IntN(4) == 0
		}
		// Repeat every request at other priorities, as long queues do.
		n := len(s.Pending)
		for i := range n {
			for k := range 3 {
				c := s.Pending[i]
				c.ID = uint64(10_000 + i*3 + k)
				c.Priority = r.IntN(5) * 100
				if k == 2 { // a smaller request of the same kind
					c.PerNode.CPUs = max(1, c.PerNode.CPUs/2)
					c.PerNode.Memory /= 2
				}
				s.Pending = append(s.Pending, c)
			}
		}
		for _, p := range allPolicies {
			want := planWith(s, t0, p, searchKnobs{busyWords: maxBusyWords, searchEveryPreemption: true})
			got := Plan(s, t0, p)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d %+v: with shortcuts\n%+v\nwithout\n%+v", seed, p, got, want)
			}
			for _, w := range got.Waiting {
				if w.Reason == ReasonPreempting {
					preempting++
				}
			}
		}
	}
	if preempting == 0 {
		t.Fatal("no job waits for preemption in any case: the shortcuts were never exercised")
	}
	t.Logf("%d preempting jobs compared", preempting)
}
