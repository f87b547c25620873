package placement

import (
	"cmp"
	"slices"
)

// searchClass looks through the index of class ci for j. With need == 1
// it keeps the best candidate in *best; for a gang it appends up to need
// nodes of every fitting bucket to cands. found counts fitting nodes (for
// one node, at least the best one), topo nodes held back only by NVLink.
//
// A class's buckets sit in levels of their free GPUs (GPU nodes) or cpus
// (others), each level sorted by free memory. The search starts at the
// job's own size and skips the buckets short of memory. When the level's
// resource is the job's dominant one, a fit at some level beats every fit
// at higher levels on best fit, so one job looks at a few buckets rather
// than every node state.
func (pl *planner) searchClass(ci int32, j *Job, k *kind, need int, cands []candidate, best *candidate, found, topo *int) []candidate {
	c := pl.c
	cl := &c.classes[ci]
	r := &j.PerNode
	gpuClass := len(cl.gpus) > 0
	lo := r.CPUs
	if gpuClass {
		lo = r.GPU.Count
	}
	// Early stop is exact only when nothing ranks before best fit for
	// this class but what the best fit at the lowest level already has,
	// and the level's resource is the one rank takes as dominant (ties go
	// to the earlier of cpus, memory, GPUs).
	stop := need == 1 && c.prof.stop[gi(j)]
	levelStop := stop // in a cpu level, the first bucket that fits is the best
	byState := c.prof.byState[gi(j)]
	var topLink uint8
	if stop {
		cs := share(int64(r.CPUs), int64(cl.ncpu))
		ms := share(r.Memory, cl.mem)
		if gpuClass {
			gs := share(int64(r.GPU.Count), int64(len(cl.gpus)))
			stop = r.GPU.Count > 0 && cl.sameGPUs && gs > cs && gs > ms
			if stop {
				topLink = c.gpuSet(ci, cl.allGPUs, k.compat[ci], r.GPU.Count, r.GPU.NVLink).q.min
			}
		} else {
			stop = cs >= ms
		}
	}
	for lvl := max(lo, 0); lvl < len(cl.levels); lvl++ {
		lv := cl.levels[lvl]
		if len(lv) == 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(lv, r.Memory, func(x int32, m int64) int { return cmp.Compare(c.buckets[x].key.mem, m) })
		hit := false
		for _, bi := range lv[i:] {
			b := &c.buckets[bi]
			a := avail{cpus: int(b.key.cpus), mem: b.key.mem, gpus: b.key.gpus}
			if !byState {
				// Some plugin may tell the bucket's nodes apart: ask it
				// about each (slower, and exact).
				cands = pl.searchBucket(b, a, j, k, need, cands, best, found, topo)
				continue
			}
			cd, why := c.fitState(-1, ci, b.key.busy, a, j, k, true)
			switch why {
			case "":
				cd.node = b.nodes[0]
				if need == 1 {
					if *found == 0 || better(cd, *best) {
						*best = cd
					}
					hit = hit || cd.sc.tier == tierFit && cd.sc.link >= topLink
				} else {
					for _, ni := range b.nodes[:min(need, len(b.nodes))] {
						cd.node = ni
						cands = append(cands, cd)
					}
				}
				*found += len(b.nodes)
			case ReasonGPUTopology:
				*topo += len(b.nodes)
			}
			if !gpuClass && why == "" && levelStop {
				// In a cpu level the bucket with the least memory that
				// fits is the best fit of the level.
				break
			}
		}
		if stop && hit {
			break
		}
	}
	return cands
}

// searchBucket is searchClass's step for one bucket when plugins may
// judge its nodes differently: each node on its own, all in name order.
func (pl *planner) searchBucket(b *bucket, a avail, j *Job, k *kind, need int, cands []candidate, best *candidate, found, topo *int) []candidate {
	c := pl.c
	for _, ni := range b.nodes {
		cd, why := c.fitState(ni, b.key.class, b.key.busy, a, j, k, true)
		cd.node = ni
		cands = offer(cd, why, need, best, cands, found, topo)
	}
	return cands
}

func share(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}
