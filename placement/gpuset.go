package placement

import (
	"math/bits"

	"github.com/hpc-sched/hpc/resources"
)

// perfectLink is the "minimum link" of a set of fewer than two GPUs: no
// pair, so nothing to slow it down.
const perfectLink = 255

// setQuality ranks a GPU set: the weakest pairwise link first (every
// collective runs at the speed of its slowest hop), then the sum of the
// pairwise links, then how well the GPUs left free afterwards are linked
// among themselves (so a 1-GPU job takes the orphan of a broken NVLink
// pair rather than splitting a whole one).
type setQuality struct {
	min  uint8
	sum  int
	left int
}

// better reports whether q beats o. Equal qualities go to the set with
// the lowest positions, which the enumeration order decides.
func (q setQuality) better(o setQuality) bool {
	if q.min != o.min {
		return q.min > o.min
	}
	if q.sum != o.sum {
		return q.sum > o.sum
	}
	return q.left > o.left
}

// maxEnumerate bounds exhaustive search: C(16,8) = 12870 sets. Every real
// node (8 GPUs, C(8,4) = 70) is far below it; larger ones fall back to a
// greedy choice that is good but not proven optimal.
const maxEnumerate = 13000

// bestGPUSet chooses k GPUs among the positions in cand (a subset of
// free) that maximise setQuality; with nvlink only sets whose every pair
// is LinkNVLink qualify. ok is false when no set qualifies.
func bestGPUSet(links [][]resources.Link, free, cand uint64, k int, nvlink bool) (set uint64, q setQuality, ok bool) {
	n := bits.OnesCount64(cand)
	if k <= 0 {
		return 0, setQuality{min: perfectLink}, true
	}
	if k > n {
		return 0, setQuality{}, false
	}
	var pos [maxGPUs]int
	m := 0
	for w := cand; w != 0; w &= w - 1 {
		pos[m] = bits.TrailingZeros64(w)
		m++
	}
	if binomial(n, k) > maxEnumerate {
		return greedyGPUSet(links, free, pos[:m], k, nvlink)
	}
	// Enumerate k-combinations of pos in lexicographic order, so the first
	// set of the best quality is the one with the lowest positions.
	var idx [maxGPUs]int
	for i := 0; i < k; i++ {
		idx[i] = i
	}
	for {
		var s uint64
		for i := 0; i < k; i++ {
			s |= 1 << pos[idx[i]]
		}
		if sq, good := quality(links, free, s, nvlink); good && (!ok || sq.better(q)) {
			set, q, ok = s, sq, true
		}
		i := k - 1
		for i >= 0 && idx[i] == n-k+i {
			i--
		}
		if i < 0 {
			return set, q, ok
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// quality scores set s; good is false when nvlink is asked and some pair
// is not NVLink.
func quality(links [][]resources.Link, free, s uint64, nvlink bool) (q setQuality, good bool) {
	q.min = perfectLink
	for a := s; a != 0; a &= a - 1 {
		i := bits.TrailingZeros64(a)
		for b := a & (a - 1); b != 0; b &= b - 1 {
			l := links[i][bits.TrailingZeros64(b)]
			if nvlink && l != resources.LinkNVLink {
				return q, false
			}
			if uint8(l) < q.min {
				q.min = uint8(l)
			}
			q.sum += int(l)
		}
	}
	rest := free &^ s
	for a := rest; a != 0; a &= a - 1 {
		i := bits.TrailingZeros64(a)
		for b := a & (a - 1); b != 0; b &= b - 1 {
			q.left += int(links[i][bits.TrailingZeros64(b)])
		}
	}
	return q, true
}

// greedyGPUSet grows a set from every starting GPU, each step adding the
// GPU that keeps the best quality, and keeps the best result.
func greedyGPUSet(links [][]resources.Link, free uint64, pos []int, k int, nvlink bool) (set uint64, q setQuality, ok bool) {
	for _, start := range pos {
		s := uint64(1) << start
		for c := 1; c < k; c++ {
			var bestS uint64
			var bestQ setQuality
			found := false
			for _, p := range pos {
				if s&(1<<p) != 0 {
					continue
				}
				if sq, good := quality(links, free, s|1<<p, nvlink); good && (!found || sq.better(bestQ)) {
					bestS, bestQ, found = s|1<<p, sq, true
				}
			}
			if !found {
				s = 0
				break
			}
			s = bestS
		}
		if s == 0 {
			continue
		}
		if sq, good := quality(links, free, s, nvlink); good && (!ok || sq.better(q)) {
			set, q, ok = s, sq, true
		}
	}
	return set, q, ok
}

func binomial(n, k int) int {
	if k > n-k {
		k = n - k
	}
	r := 1
	for i := 1; i <= k; i++ {
		r = r * (n - k + i) / i
		if r > 1<<40 {
			return r
		}
	}
	return r
}

// gpuKey identifies one GPU-set question; answers depend only on the class
// topology and the masks, so they are cached for the whole Plan call.
type gpuKey struct {
	class      int32
	free, cand uint64
	k          int16
	nvlink     bool
}

type gpuAnswer struct {
	set uint64
	q   setQuality
	ok  bool
}

// gpuSet answers bestGPUSet for a class, through the cache.
func (c *cluster) gpuSet(ci int32, free, cand uint64, k int, nvlink bool) gpuAnswer {
	key := gpuKey{ci, free, cand, int16(k), nvlink}
	if a, hit := c.gpuCache[key]; hit {
		return a
	}
	s, q, ok := bestGPUSet(c.classes[ci].links, free, cand, k, nvlink)
	a := gpuAnswer{s, q, ok}
	if c.gpuCache == nil {
		c.gpuCache = map[gpuKey]gpuAnswer{}
	}
	c.gpuCache[key] = a
	return a
}
