package sim

import (
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpX(t *testing.T) {
	for _, c := range []struct{ n int; jobs []swfJob }{
		{5, []swfJob{{0, 10, 2, -1}, {0, 100, 3, -1}, {11, 100, 3, -1}, {12, 1000, 1, -1}}},
	} {
		for _, pl := range []struct{n string; p Planner}{{"plan", defaultPlan}, {"ref", refPlan}} {
			tr, _ := ReadSWFFile(writeSWF(t, []string{"MaxProcs: " + string(rune('0'+c.n))}, c.jobs))
			nodes, jobs, _, _ := SWFWorkload(tr, 0, 0, 0)
			out, err := Replay(nodes, jobs, placement.Policy{Backfill: placement.EASY}, pl.p)
			if err != nil { t.Fatal(err) }
			var s []int64
			for _, p := range out.Placed { s = append(s, int64(p.Start.Sub(Epoch)/time.Second)) }
			t.Logf("%s: %v", pl.n, s)
		}
	}
}
