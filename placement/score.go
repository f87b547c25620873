package placement

import (
	"math/bits"
)

// Placement on one node is a chain of small steps, as in Nomad: checkers
// that say whether a node can take a job (fitOn), then rankers that order
// the nodes that can (score). Each is tested on its own.

// avail is what a node can give a job: what is free now, or what stays
// free throughout a future window.
type avail struct {
	cpus    int
	mem     int64
	gpus    uint64   // wholly free GPUs
	shares  []int16  // per GPU position, hundredths held by sharing jobs; nil: none
	cpuMask []uint64 // which cpu positions; may alias scratch space
}

// candidate is one node that can take a job's share, with the GPU set it
// would get and its rank.
type candidate struct {
	node int32
	gpus uint64
	sc   score
}

// score ranks candidate nodes; lower is better (see less).
type score struct {
	link  uint8   // weakest link of the GPU set (higher is better)
	tier  uint8   // fragmentation tier (lower is better)
	ext   float64 // summed cost of the policy's plugin scorers (lower is better)
	gfit  gpuFit  // best fit on free GPU count (see gpuFit)
	dom   float64 // leftover share of the dominant resource (lower is better)
	total float64 // leftover shares summed over all resources (lower is better)
	sum   int     // sum of the GPU set's links (higher is better)
}

// Tiers keep work where it wastes least.
const (
	tierFit       = 0 // the job fits here without harm
	tierWholeNode = 1 // a small GPU job would break up a whole free GPU node (Packing.SpareWholeNodes)
	tierGPUNode   = 2 // a CPU-only job would sit on a GPU node
)

// compare is less as a three-way comparison, for sorting.
func (a score) compare(b score) int {
	if a.less(b) {
		return -1
	}
	if b.less(a) {
		return 1
	}
	return 0
}

// less reports whether a ranks before b: the best interconnect for the
// job's GPUs first (it decides how fast the job runs), then the tier, then
// the plugin scorers' cost, then best fit on free GPUs, then dominant-resource best fit, then total
// leftover, then link sum.
func (a score) less(b score) bool {
	if a.link != b.link {
		return a.link > b.link
	}
	if a.tier != b.tier {
		return a.tier < b.tier
	}
	if a.ext != b.ext {
		return a.ext < b.ext
	}
	if a.gfit != b.gfit {
		return a.gfit.less(b.gfit)
	}
	if a.dom != b.dom {
		return a.dom < b.dom
	}
	if a.total != b.total {
		return a.total < b.total
	}
	return a.sum > b.sum
}

// gpuFit is the GPU ranking step. Leftover shares (dom, total) divide by
// the node's size, so 3 of 8 GPUs left looks tighter than 2 of 4 and
// small jobs drift onto the big NVSwitch nodes, breaking them up for the
// 8-GPU jobs that need them whole. Counting in GPUs instead, the node
// whose free GPUs are the fewest that still hold the request wins, and
// among equals the node with fewer GPUs in all, so large nodes stay whole
// for the requests only they can serve. Zero for CPU-only jobs.
type gpuFit struct {
	left  int // free GPUs left after placing the request
	total int // GPUs the node has
}

func (a gpuFit) less(b gpuFit) bool {
	if a.left != b.left {
		return a.left < b.left
	}
	return a.total < b.total
}

// rankGPUFit computes the gpuFit step for a request of want GPUs on a
// node of total GPUs with free of them free.
func rankGPUFit(want, free, total int) gpuFit {
	if want <= 0 {
		return gpuFit{}
	}
	return gpuFit{left: free - want, total: total}
}

// fitOn is the checker: can node ni give one node's share of j out of a?
// On success the candidate carries the chosen GPU set and, with rank, the
// score; otherwise the reason is ReasonResources, or ReasonGPUTopology
// when enough matching GPUs are free but no NVLink set among them.
func (c *cluster) fitOn(ni int32, a avail, j *Job, k *kind, rank bool) (candidate, Reason) {
	n := &c.nodes[ni]
	cd, r := c.fitState(ni, n.class, n.busy, a, j, k, rank)
	cd.node = ni
	return cd, r
}

// fitState is fitOn for node ni of class ci in the given state. With
// ni < 0 it answers for any node of the class in that state, which is
// exact when every plugin that applies is StateOnly (profile.byState):
// then nodes of one class and one free state are interchangeable but for
// their names.
func (c *cluster) fitState(ni, ci int32, busy bool, a avail, j *Job, k *kind, rank bool) (candidate, Reason) {
	r := &j.PerNode
	if !k.classOK[ci] || a.cpus < r.CPUs || a.mem < r.Memory {
		return candidate{}, ReasonResources
	}
	var cd candidate
	if sh := shareOf(r); sh > 0 {
		p, ok := pickShared(a, k.compat[ci], sh)
		if !ok {
			return candidate{}, ReasonResources
		}
		cd.gpus = 1 << p
		cd.sc.link = perfectLink
	} else if g := r.GPU.Count; g > 0 {
		cand := a.gpus & k.compat[ci]
		if bits.OnesCount64(cand) < g {
			return candidate{}, ReasonResources
		}
		if (!rank || !c.prof.packing) && !r.GPU.NVLink {
			cd.gpus = lowest(cand, g) // no interconnect ranking: the lowest ids
		} else {
			ans := c.gpuSet(ci, a.gpus, cand, g, r.GPU.NVLink)
			if !ans.ok {
				return candidate{}, ReasonGPUTopology
			}
			cd.gpus = ans.set
			cd.sc.link, cd.sc.sum = ans.q.min, ans.q.sum
		}
	}
	if !rank {
		return cd, ""
	}
	if !c.plugins(j, ni, ci, busy, a, &cd) {
		return candidate{}, ReasonResources
	}
	if !c.prof.packing {
		cd.sc = score{ext: cd.sc.ext}
		return cd, ""
	}
	c.rank(&cd, ci, busy, a, j)
	return cd, ""
}

// shareOf is a sharing request's share of one GPU in hundredths, 0 for
// whole GPUs.
func shareOf(r *Request) int16 {
	if r.GPU.Share <= 0 || r.GPU.Share >= 1 || r.GPU.Count != 1 {
		return 0
	}
	return int16(max(1, min(99, int(r.GPU.Share*100+0.5))))
}

// pickShared chooses the GPU for a sharing request of sh hundredths among
// compat: the one already shared with the least room that still holds
// it (sharers pack together and whole GPUs stay whole), else the lowest
// wholly free one. GPUs held whole are never in either set.
func pickShared(a avail, compat uint64, sh int16) (int, bool) {
	best, room := -1, int16(101)
	for p := range a.shares {
		if compat&(1<<p) == 0 || a.shares[p] == 0 || a.shares[p] < 0 {
			continue
		}
		if left := 100 - a.shares[p]; left >= sh && left < room {
			best, room = p, left
		}
	}
	if best >= 0 {
		return best, true
	}
	if m := a.gpus & compat; m != 0 {
		return bits.TrailingZeros64(m), true
	}
	return 0, false
}

// rank fills in the fragmentation tier and the best-fit terms.
func (c *cluster) rank(cd *candidate, ci int32, busy bool, a avail, j *Job) {
	cl := &c.classes[ci]
	r := &j.PerNode
	switch {
	case r.GPU.Count == 0 && len(cl.gpus) > 0:
		cd.sc.tier = tierGPUNode
	case c.prof.spareWhole && r.GPU.Count > 0 && r.GPU.Count < len(cl.gpus) && !busy && a.gpus == cl.allGPUs:
		cd.sc.tier = tierWholeNode
	}
	want := r.GPU.Count
	if shareOf(r) > 0 && cd.gpus&a.gpus == 0 {
		want = 0 // joins a GPU already shared: no whole GPU taken
	}
	cd.sc.gfit = rankGPUFit(want, bits.OnesCount64(a.gpus), len(cl.gpus))
	var freeGPUMem, reqGPUMem int64
	for w := a.gpus; w != 0; w &= w - 1 {
		freeGPUMem += cl.gpus[bits.TrailingZeros64(w)].Memory
	}
	for w := cd.gpus & a.gpus; w != 0; w &= w - 1 {
		reqGPUMem += cl.gpus[bits.TrailingZeros64(w)].Memory
	}
	req := [4]int64{int64(r.CPUs), r.Memory, int64(want), reqGPUMem}
	free := [4]int64{int64(a.cpus), a.mem, int64(bits.OnesCount64(a.gpus)), freeGPUMem}
	capa := [4]int64{int64(cl.ncpu), cl.mem, int64(len(cl.gpus)), cl.gpuMem}
	d, best := 0, -1.0
	for i := range req {
		if capa[i] > 0 {
			if s := float64(req[i]) / float64(capa[i]); s > best {
				d, best = i, s
			}
		}
	}
	cd.sc.dom, cd.sc.total = 0, 0
	for i := range req {
		if capa[i] > 0 {
			left := float64(free[i]-req[i]) / float64(capa[i])
			cd.sc.total += left
			if i == d {
				cd.sc.dom = left
			}
		}
	}
}

// lowest returns the k lowest set bits of m.
func lowest(m uint64, k int) uint64 {
	var s uint64
	for ; k > 0 && m != 0; k-- {
		b := m & -m
		s |= b
		m &^= b
	}
	return s
}
