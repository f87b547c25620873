package sim

// defaultPlan is the placer replays use unless told otherwise.
// TODO: placement.Plan once the placer lands.
var defaultPlan Planner
