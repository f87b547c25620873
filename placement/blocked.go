package placement

// The reservation memo. A job that fits the free-now state but not around
// the reservations of the pass (ReasonReservation) tells the same as a
// Resources failure about larger jobs: any request of its kind at least as
// large, in a gang at least as large and running at least as long, finds
// fewer nodes still (free resources only shrink in a pass, bookings only
// add up, and a longer window overlaps more of them), so it cannot start
// either. Only its reason is open: Reservation when it fits the free-now
// state on enough nodes, else Resources, and that count needs no node's
// time profile. So placeNow skips the window check of every reserved
// node for it, the bulk of a pass when a large reservation leaves a long
// queue behind it. Requests with NVLink are left out: their reason may be
// GPUTopology, which does need the windows.

// blockedBy reports whether a remembered Reservation failure covers j.
func (k *kind) blockedBy(j *Job, wall int64) bool {
	if j.PerNode.GPU.NVLink {
		return false
	}
	_, ok := lookupFailure(k.blocked, j, wall)
	return ok
}

// block remembers that j failed for a reservation; entries the new one
// covers are dropped.
func (k *kind) block(j *Job, wall int64) {
	r := &j.PerNode
	if r.GPU.NVLink {
		return
	}
	k.blocked = addFailure(k.blocked, failure{cpus: r.CPUs, gpus: r.GPU.Count, nodes: gangSize(j), mem: r.Memory, wall: wall, share: shareOf(r), reason: ReasonReservation})
}
