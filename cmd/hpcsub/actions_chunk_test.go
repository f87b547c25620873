package main

import (
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// The server takes at most api.MaxActionTargets targets in one request;
// `hpcsub cancel 244-2243` (the Slurm habit) is sent in several.
func TestActionTargetsSentInChunks(t *testing.T) {
	f := newFakeServer(t)
	f.add(sampleJobs()...)
	hpcsub("--addr", f.addr, "cancel", "1-2500") // most ids are unknown: exit 1
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for _, req := range f.actionReqs {
		if len(req.Targets) == 0 || len(req.Targets) > api.MaxActionTargets {
			t.Errorf("a request with %d targets, want 1..%d", len(req.Targets), api.MaxActionTargets)
		}
		total += len(req.Targets)
	}
	if len(f.actionReqs) != 3 || total != 2500 {
		t.Fatalf("%d requests with %d targets, want 3 with 2500", len(f.actionReqs), total)
	}
}
