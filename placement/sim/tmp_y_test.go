package sim

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpY(t *testing.T) {
	var d struct{S placement.Snapshot; Now time.Time}
	b, _ := os.ReadFile("/tmp/snap.json")
	json.Unmarshal(b, &d)
	keep := func(ids ...uint64) []placement.Job { var o []placement.Job; for _, j := range d.S.Pending { for _, id := range ids { if j.ID == id { o = append(o, j) } } }; return o }
	for _, ids := range [][]uint64{{35, 42}, {35, 37, 42}, {35, 39, 42}, {35, 37, 39, 42}} {
		s := d.S
		s.Pending = keep(ids...)
		dec := placement.Plan(s, d.Now, placement.Policy{Backfill: placement.EASY})
		var st []uint64
		for _, x := range dec.Starts { st = append(st, x.JobID) }
		t.Logf("pending %v -> starts %v", ids, st)
		busy := map[string]bool{}
		for _, r := range s.Running { for _, a := range r.Nodes { busy[a.Node] = true } }
		for _, w := range dec.Waiting { nf := 0; for _, n := range w.ReservedNodes { if !busy[n] { nf++ } }; if len(w.ReservedNodes) > 0 { t.Logf("   reserved nodes free now: %d of %d: %v", nf, len(w.ReservedNodes), w.ReservedNodes[:5]) } }
		for _, w := range dec.Waiting { t.Logf("   %d %s %v %d nodes", w.JobID, w.Reason, w.ReservedStart.Sub(d.Now), len(w.ReservedNodes)) }
	}
}
