package placement

import "math/bits"

// NUMA locality. A GPU job runs best with its CPUs on the NUMA node its
// GPUs hang off: host-device copies then stay off the socket interconnect.
// Where the snapshot says which CPUs belong to which NUMA node
// (Node.NUMA) and where each GPU sits (GPU.NUMA), the CPUs a job gets are
// taken first from its GPUs' NUMA nodes, lowest ids first, and only then
// from the others. Which CPUs are taken never changes whether or where a
// job fits (that counts CPUs), so no fast path depends on it.

// numaPrefer returns the cpu positions on the NUMA nodes of the GPUs in
// gpus (positions) on node n, or nil when the node has no NUMA layout or
// the job no GPU. The slice is scratch space, valid until the next call
// (pickCPUs runs once per reservation candidate: no allocation each time).
func (c *cluster) numaPrefer(n *node, gpus uint64) []uint64 {
	if gpus == 0 || n.numaCPU == nil {
		return nil
	}
	var pref []uint64
	for m := gpus; m != 0; m &= m - 1 {
		d := n.gpuNUMA[bits.TrailingZeros64(m)]
		if d < 0 || d >= len(n.numaCPU) {
			continue
		}
		if pref == nil {
			if cap(c.prefScratch) < len(n.freeCPU) {
				c.prefScratch = make([]uint64, len(n.freeCPU))
			}
			pref = c.prefScratch[:len(n.freeCPU)]
			clear(pref)
		}
		for w, x := range n.numaCPU[d] {
			pref[w] |= x
		}
	}
	return pref
}

// pickCPUs chooses cpus positions out of cpuFree for a job with GPU set
// gpus on node ni and writes them, as a bitset, into dst (zeroed, sized
// like cpuFree): the preferred NUMA nodes' lowest free positions first,
// then the lowest of the rest. It returns how many it could take.
func (c *cluster) pickCPUs(ni int32, cpuFree []uint64, cpus int, gpus uint64, dst []uint64) int {
	left := cpus
	if pref := c.numaPrefer(&c.nodes[ni], gpus); pref != nil {
		for w := 0; w < len(cpuFree) && left > 0; w++ {
			for m := cpuFree[w] & pref[w]; m != 0 && left > 0; m &= m - 1 {
				dst[w] |= m & -m
				left--
			}
		}
	}
	for w := 0; w < len(cpuFree) && left > 0; w++ {
		for m := cpuFree[w] &^ dst[w]; m != 0 && left > 0; m &= m - 1 {
			dst[w] |= m & -m
			left--
		}
	}
	return cpus - left
}

// setNUMA records node in's NUMA layout on n, in cpu positions.
func (c *cluster) setNUMA(in *Node, n *node) {
	if len(in.NUMA) == 0 {
		return
	}
	n.numaCPU = make([][]uint64, len(in.NUMA))
	for d, ids := range in.NUMA {
		n.numaCPU[d] = make([]uint64, (n.ncpu+63)/64)
		for _, id := range ids {
			if p := n.cpuPos(id); p >= 0 {
				n.numaCPU[d][p/64] |= 1 << (p % 64)
			}
		}
	}
	n.gpuNUMA = make([]int, len(n.gpus))
	for p, g := range n.gpus {
		n.gpuNUMA[p] = g.NUMA
	}
}
