package placement

import (
	"cmp"
	"math/bits"
	"slices"
)

// The index makes a job's search cost the number of distinct node states,
// not the number of nodes. Nodes of one class in one free state (free cpu
// count, free memory, free GPU set, busy or not) are interchangeable: they
// pass the same checks with the same score and differ only by name, and
// the lowest name wins ties. So each Up node without reservations sits in
// the bucket of its state, buckets keep their nodes in name order, and a
// search scores each bucket once. Nodes holding a reservation leave the
// index: their fit depends on the job's walltime, so they are checked one
// by one against their time profile.

type stateKey struct {
	class int32
	cpus  int32
	busy  bool
	mem   int64
	gpus  uint64
}

type bucket struct {
	key   stateKey
	nodes []int32 // ascending node index = name order
	live  bool    // listed in its class's level
	dirty bool    // indexMany, unindexMany: being changed
	from  int     // indexMany: where the nodes it adds begin
}

// level is a bucket's place in its class: free GPUs on GPU nodes, free
// cpus on the others, so a search starts at the job's own size.
func (c *cluster) level(k stateKey) int {
	if len(c.classes[k.class].gpus) > 0 {
		return bits.OnesCount64(k.gpus)
	}
	return int(k.cpus)
}

// cmpKey orders the buckets of one level: by free memory first, so a
// search can skip to the first one with enough.
func cmpKey(a, b stateKey) int {
	if c := cmp.Compare(a.mem, b.mem); c != 0 {
		return c
	}
	if c := cmp.Compare(a.cpus, b.cpus); c != 0 {
		return c
	}
	if c := cmp.Compare(a.gpus, b.gpus); c != 0 {
		return c
	}
	if a.busy == b.busy {
		return 0
	}
	if a.busy {
		return 1
	}
	return -1
}

// indexAll puts every Up node into its bucket; called once the running
// allocations are applied.
func (c *cluster) indexAll() {
	c.bucketOf = make(map[stateKey]int32)
	c.buckets, c.sharedNodes = c.buckets[:0], c.sharedNodes[:0]
	for ci := range c.classes {
		cl := &c.classes[ci]
		if len(cl.gpus) > 0 {
			cl.levels = make([][]int32, len(cl.gpus)+1)
		} else {
			cl.levels = make([][]int32, cl.ncpu+1)
		}
	}
	for i := range c.nodes {
		c.nodes[i].bucket = -1
		if c.nodes[i].state == NodeUp {
			c.index(int32(i))
		}
	}
}

func (c *cluster) keyOf(ni int32) stateKey {
	n := &c.nodes[ni]
	// Only GPU nodes care whether they are whole (see tierWholeNode).
	busy := n.busy && len(c.classes[n.class].gpus) > 0
	return stateKey{class: n.class, cpus: int32(max(n.nFreeCPU, 0)), busy: busy, mem: n.freeMem, gpus: n.freeGPU}
}

// index adds node ni to the bucket of its current state, or to the list
// of reserved nodes, or to the list of nodes with shared GPUs.
func (c *cluster) index(ni int32) {
	n := &c.nodes[ni]
	if n.reserved {
		if i, found := slices.BinarySearch(c.reservedNodes, ni); !found {
			c.reservedNodes = slices.Insert(c.reservedNodes, i, ni)
		}
		i, found := slices.BinarySearch(c.reservedFree, ni)
		switch free := n.nFreeCPU > 0 || n.freeGPU != 0; {
		case free && !found:
			c.reservedFree = slices.Insert(c.reservedFree, i, ni)
		case !free && found:
			c.reservedFree = slices.Delete(c.reservedFree, i, i+1)
		}
		return
	}
	if n.nShared > 0 {
		if i, found := slices.BinarySearch(c.sharedNodes, ni); !found {
			c.sharedNodes = slices.Insert(c.sharedNodes, i, ni)
		}
		return
	}
	key := c.keyOf(ni)
	bi, ok := c.bucketOf[key]
	if !ok {
		bi = int32(len(c.buckets))
		c.buckets = append(c.buckets, bucket{key: key})
		c.bucketOf[key] = bi
	}
	b := &c.buckets[bi]
	i, _ := slices.BinarySearch(b.nodes, ni)
	b.nodes = slices.Insert(b.nodes, i, ni)
	if !b.live {
		lv := &c.classes[key.class].levels[c.level(key)]
		i, _ := slices.BinarySearchFunc(*lv, key, func(x int32, k stateKey) int { return cmpKey(c.buckets[x].key, k) })
		*lv = slices.Insert(*lv, i, bi)
		b.live = true
	}
	n.bucket = bi
}

// unindex takes node ni out of its bucket before its state changes.
func (c *cluster) unindex(ni int32) {
	n := &c.nodes[ni]
	if n.nShared > 0 && !n.reserved {
		if i, found := slices.BinarySearch(c.sharedNodes, ni); found {
			c.sharedNodes = slices.Delete(c.sharedNodes, i, i+1)
		}
	}
	if n.bucket < 0 {
		return
	}
	b := &c.buckets[n.bucket]
	n.bucket = -1
	if i, found := slices.BinarySearch(b.nodes, ni); found {
		if i == 0 {
			b.nodes = b.nodes[1:] // the usual case: the best node is the first
		} else {
			b.nodes = slices.Delete(b.nodes, i, i+1)
		}
	}
	if len(b.nodes) == 0 {
		lv := &c.classes[b.key.class].levels[c.level(b.key)]
		if i, found := slices.BinarySearchFunc(*lv, b.key, func(x int32, k stateKey) int { return cmpKey(c.buckets[x].key, k) }); found {
			*lv = slices.Delete(*lv, i, i+1)
		}
		b.live = false
		b.nodes = nil // drop the resliced backing array
	}
}

// unindexMany is unindex for many nodes at once (a gang started or
// ended): each bucket is filtered once rather than once per node.
func (c *cluster) unindexMany(nis []int32) {
	dirty := c.dirtyBuckets[:0]
	for _, ni := range nis {
		n := &c.nodes[ni]
		if n.bucket < 0 || n.nShared > 0 && !n.reserved {
			c.unindex(ni)
			continue
		}
		b := &c.buckets[n.bucket]
		if !b.dirty {
			b.dirty = true
			b.from = 0
			dirty = append(dirty, n.bucket)
		}
		b.from++      // counts the nodes leaving
		n.bucket = -2 // leaving its bucket
	}
	for _, bi := range dirty {
		b := &c.buckets[bi]
		b.dirty = false
		k := b.from
		prefix := true // the usual case: the gang took the lowest names
		for _, ni := range b.nodes[:k] {
			prefix = prefix && c.nodes[ni].bucket == -2
		}
		switch {
		case prefix:
			b.nodes = b.nodes[k:]
		default:
			kept := b.nodes[:0]
			for _, ni := range b.nodes {
				if c.nodes[ni].bucket != -2 {
					kept = append(kept, ni)
				}
			}
			b.nodes = kept
		}
		if len(b.nodes) == 0 {
			lv := &c.classes[b.key.class].levels[c.level(b.key)]
			if i, found := slices.BinarySearchFunc(*lv, b.key, func(x int32, k stateKey) int { return cmpKey(c.buckets[x].key, k) }); found {
				*lv = slices.Delete(*lv, i, i+1)
			}
			b.live = false
			b.nodes = nil
		}
	}
	for _, ni := range nis {
		if c.nodes[ni].bucket == -2 {
			c.nodes[ni].bucket = -1
		}
	}
	c.dirtyBuckets = dirty[:0]
}

// indexMany is index for many Up nodes at once: the nodes joining one
// bucket are merged into it in one pass rather than inserted one by one.
func (c *cluster) indexMany(nis []int32) {
	dirty := c.dirtyBuckets[:0]
	var (
		last    int32
		lastKey stateKey
		hasLast bool
	)
	for _, ni := range nis {
		n := &c.nodes[ni]
		if n.reserved || n.nShared > 0 {
			c.index(ni)
			continue
		}
		// A gang's nodes mostly go to one bucket: its key is looked up
		// once, not once per node.
		key := c.keyOf(ni)
		bi, ok := last, hasLast && key == lastKey
		if !ok {
			if bi, ok = c.bucketOf[key]; !ok {
				bi = int32(len(c.buckets))
				c.buckets = append(c.buckets, bucket{key: key})
				c.bucketOf[key] = bi
			}
			last, lastKey, hasLast = bi, key, true
		}
		b := &c.buckets[bi]
		if !b.dirty {
			b.dirty = true
			b.from = len(b.nodes)
			dirty = append(dirty, bi)
		}
		b.nodes = append(b.nodes, ni)
		n.bucket = bi
	}
	for _, bi := range dirty {
		b := &c.buckets[bi]
		b.dirty = false
		c.mergeAdded(b)
		if !b.live {
			lv := &c.classes[b.key.class].levels[c.level(b.key)]
			i, _ := slices.BinarySearchFunc(*lv, b.key, func(x int32, k stateKey) int { return cmpKey(c.buckets[x].key, k) })
			*lv = slices.Insert(*lv, i, bi)
			b.live = true
		}
	}
	c.dirtyBuckets = dirty[:0]
}

// mergeAdded merges the nodes indexMany appended to bucket b (from b.from
// on) into its sorted nodes.
func (c *cluster) mergeAdded(b *bucket) {
	c.mergeSortedTail(b.nodes, b.from)
}

// mergeSortedTail sorts s[from:] and merges it into the ascending s[:from]
// in place: a backward merge, linear in len(s), through c.mergeScratch.
// The usual case, every added node after the last sorted one, is only the
// sort of the tail.
func (c *cluster) mergeSortedTail(s []int32, from int) {
	tail := s[from:]
	slices.Sort(tail)
	if from == 0 || len(tail) == 0 || tail[0] > s[from-1] {
		return
	}
	add := append(c.mergeScratch[:0], tail...)
	c.mergeScratch = add
	i, j, w := from-1, len(add)-1, len(s)-1
	for j >= 0 {
		if i >= 0 && s[i] > add[j] {
			s[w] = s[i]
			i--
		} else {
			s[w] = add[j]
			j--
		}
		w--
	}
}
