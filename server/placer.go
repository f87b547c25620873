package server

import (
	"sync"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// keptPlacer is the scheduler's placement state kept between passes
// (placement.State): each pass brings it up to date from the pass's
// snapshot with Sync, which applies only what changed (a job started or
// ended, a node changed) instead of rebuilding every node, then plans on
// it. The decisions are those of placement.Plan on the same snapshot
// (placement's TestStateMatchesRebuild); the dry run keeps calling Plan.
type keptPlacer struct {
	mu sync.Mutex // one pass at a time
	st *placement.State
}

func (k *keptPlacer) plan(snap placement.Snapshot, now time.Time, p placement.Policy) placement.Decisions {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.st == nil {
		k.st = placement.NewState(snap.Nodes, snap.Running)
	} else {
		k.st.Sync(snap.Nodes, snap.Running)
	}
	return k.st.Plan(snap.Pending, now, p)
}
