package sim

import (
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpResv(t *testing.T) {
	tr, _ := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	for _, pl := range []struct{n string; p Planner}{{"plan", defaultPlan}, {"ref", refPlan}} {
		resv := map[uint64]time.Time{}
		wrap := func(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
			d := pl.p(s, now, p)
			for _, w := range d.Waiting {
				if !w.ReservedStart.IsZero() {
					if _, ok := resv[w.JobID]; !ok {
						resv[w.JobID] = w.ReservedStart
					}
				}
			}
			return d
		}
		nodes, jobs, _, _ := SWFWorkload(tr, 0, 0, 1024)
		out, err := Replay(nodes, jobs, placement.Policy{Backfill: placement.EASY}, wrap)
		if err != nil { t.Fatal(err) }
		bad := 0
		for i, j := range jobs {
			if r, ok := resv[j.ID]; ok && out.Placed[i].Start.After(r) {
				if bad < 5 { t.Logf("%s: job %d reserved %v started %v (%d nodes)", pl.n, j.ID, r.Sub(Epoch), out.Placed[i].Start.Sub(Epoch), j.Nodes) }
				bad++
			}
		}
		t.Logf("%s: %d reservations, %d broken", pl.n, len(resv), bad)
	}
}
