package sim

import (
	"os"
	"strconv"
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpSpeed(t *testing.T) {
	tr, _ := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	jobs, _ := strconv.Atoi(os.Getenv("JOBS"))
	from, _ := strconv.Atoi(os.Getenv("FROM"))
	for _, b := range []placement.Backfill{placement.Backfill(os.Getenv("POL"))} {
		for _, pl := range []struct{n string; p Planner}{{"plan", nil}, {"ref", refPlan}} {
			if b == placement.Conservative && pl.n == "ref" { continue }
			r, err := SimulateSWF(tr, SWFOptions{Policy: placement.Policy{Backfill: b}, Plan: pl.p, From: from, Jobs: jobs})
			t.Logf("%s %s from %d: %+v %v", pl.n, b, from, r, err)
		}
	}
}
