package sim

import (
	"encoding/json"
	"os"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

func TestTmpDiff(t *testing.T) {
	tr, _ := ReadSWFFile(sharedTrace(t, "lublin_256.swf"))
	done := false
	wrap := func(s placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
		d := defaultPlan(s, now, p)
		if done { return d }
		r := refPlan(s, now, p)
		ids := func(d placement.Decisions) []uint64 { var x []uint64; for _, st := range d.Starts { x = append(x, st.JobID) }; slices.Sort(x); return x }
		if !slices.Equal(ids(d), ids(r)) {
			done = true
			b, _ := json.Marshal(struct{S placement.Snapshot; Now time.Time}{s, now})
			os.WriteFile("/tmp/snap.json", b, 0o644)
			free := len(s.Nodes)
			for _, rr := range s.Running { free -= len(rr.Nodes) }
			t.Logf("t=%v free=%d plan starts %v ref starts %v", now.Sub(Epoch), free, ids(d), ids(r))
			q := slices.Clone(s.Pending)
			slices.SortFunc(q, func(a, b placement.Job) int { return cmpU64(a.ID, b.ID) })
			for _, j := range q[:min(8, len(q))] { t.Logf(" pending %d nodes=%d wall=%v submit=%v", j.ID, j.Nodes, j.Walltime, j.Submit.Sub(Epoch)) }
			ends := slices.Clone(s.Running)
			slices.SortFunc(ends, func(a, b placement.Running) int { return a.End.Compare(b.End) })
			acc := free
			for _, e := range ends[:min(12, len(ends))] { acc += len(e.Nodes); t.Logf(" running %d ends %v nodes %d cum free %d", e.JobID, e.End.Sub(now), len(e.Nodes), acc) }
			for _, w := range d.Waiting[:min(4, len(d.Waiting))] { t.Logf(" plan wait %d %s %s resv %v", w.JobID, w.Reason, w.Detail, fmt.Sprint(w.ReservedStart.Sub(now))) }
		}
		return d
	}
	nodes, jobs, _, _ := SWFWorkload(tr, 0, 0, 1024)
	Replay(nodes, jobs, placement.Policy{Backfill: placement.EASY}, wrap)
}
