package sim

import "github.com/hpc-sched/hpc/placement"

// defaultPlan is the placer replays use unless told otherwise: the very
// function the daemon's scheduler loop calls.
var defaultPlan Planner = placement.Plan
