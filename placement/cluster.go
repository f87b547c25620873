package placement

import (
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// maxGPUs is how many GPUs of one node the placer can schedule: GPU sets
// are uint64 masks over GPU positions, which keeps set arithmetic and the
// set cache allocation-free. GPUs past it are ignored.
const maxGPUs = 64

// forever stands for a time that never comes: the end of a running job
// whose walltime is unknown.
const forever = int64(1<<63 - 1)

// node is the placer's working copy of one Node. Positions, not ids, index
// CPUs and GPUs: cpu position p is cpuIDs[p]; gpu position p is gpus[p],
// sorted by GPU.ID so that "lowest ids" means "lowest positions".
type node struct {
	name     string
	state    NodeState
	class    int32
	cpuIDs   []int // sorted; nil means position == id
	ncpu     int
	mem      int64
	gpus     []GPU
	gpuIndex []int      // positions in Node.GPUs order, for reordering links
	numaCPU  [][]uint64 // per NUMA node, its cpu positions; nil: no layout (numa.go)
	gpuNUMA  []int      // per GPU position, its NUMA node

	// Free now, after every running allocation and every start decided
	// in this pass.
	freeCPU  []uint64 // bit p set: cpu position p is free
	nFreeCPU int
	freeMem  int64
	freeGPU  uint64  // wholly free GPUs
	share    []int16 // per GPU position, hundredths held by sharing jobs; nil until one runs here
	nShared  int     // GPUs with some share held
	busy     bool    // something runs or was started here (not a whole free node)
	reserved bool    // some reservation holds resources here: check windows

	allocs []int32 // indices into cluster.running of what runs here
	excl   int32   // 1 + index into cluster.excl of its newest entry, 0: none
	bucket int32   // index bucket, -1 when not indexed
	// savedAt is the pass (cluster.pass) whose journal holds this node's
	// state from before the pass changed it.
	savedAt uint32
	group   int32 // its group (group.go), -1: none
	loose   bool  // in its class's loose list (group.go)
	gdirty  bool  // queued for regrouping
}

// class groups nodes of one static shape: same features, capacity, GPU
// models and memories, and GPU links. Feasibility against a job's static
// needs and the GPU-set cache are per class, not per node.
type class struct {
	features []string // sorted
	ncpu     int
	mem      int64
	gpus     []GPU // models and memories by position (ids are per node)
	gpuMem   int64 // sum of GPU memory
	links    [][]resources.Link
	nodes    []int32 // in name order
	allGPUs  uint64
	up, live int       // nodes Up; nodes not Down
	levels   [][]int32 // non-empty buckets by level (see cluster.level)
	sameGPUs bool      // every GPU has the same memory
	cpuless  int       // allocations here holding no cpu (see excl.go)
}

// runAlloc is a running job's share of one node, in positions.
type runAlloc struct {
	node  int32
	start int64
	end   int64
	cpus  []uint64 // bitset over cpu positions
	mem   int64
	gpus  uint64
	share int16 // hundredths of each GPU of gpus, 0: whole GPUs
}

// cluster is the whole working state of one Plan call.
type cluster struct {
	prof      *profile // the policy's plugins and the fast paths they allow
	busyWords int      // widest class for busy steps (exclbits.go), in words
	// searchEveryPreemption turns off preempt.go's shortcuts (tests only).
	searchEveryPreemption bool
	viewScratch           NodeView
	queue                 Queue   // the pending queue's shapes, for scorers
	sharedNodes           []int32 // Up nodes without reservations whose GPUs are partly shared, ascending

	now     int64
	loc     *time.Location
	nodes   []node // sorted by name
	classes []class
	running []runAlloc

	gpuCache map[gpuKey]gpuAnswer
	kinds    map[string]*kind
	keyBuf   []byte

	shareBuf    []int16
	cpuScratch  []uint64
	takeScratch []uint64
	prefScratch []uint64 // numaPrefer's

	// Reservation search state (backfill.go, agg.go).
	agg        []aggProfile // per class, built on first use in a pass
	aggScratch []*aggProfile
	aggMerged  aggProfile
	rsvHi      []int64 // per node: its fitsAt answer holds until then
	rsvOK      []bool
	iv         []nodeIv // per node, for classes with ivBuilt (excl.go)
	ivBuilt    []bool
	ivUp       [][]int32    // per class with ivBuilt: its Up nodes, name order
	busy       []*busySteps // per class with ivBuilt, nil when too wide (exclbits.go)
	clsPos     []int32      // per node of a class with busy steps: its place in it
	skip       []nodeSkip   // per node, reserveExclusive's busy-until cache
	skipSeq    uint64
	nameSlab   []string // backing store of fast-path ReservedNodes
	gangs      int      // conservative: sum of pending gang sizes
	cpuSlab    []uint64 // backing store of runAlloc.cpus
	freeSlots  []int32  // kept state: c.running entries of jobs that ended, for reuse

	// The kept state's undo journal (state.go): what a pass changed, to be
	// put back when it is over.
	pass       uint32      // number of the current pass, for node.savedAt
	journal    bool        // record nodes before commit changes them
	saved      []savedNode // nodes as they were before this pass changed them
	savedCPU   []uint64    // backing store of savedNode.freeCPU
	restoreBuf []int32     // endPass's scratch
	baseRun    int         // len(c.running) before the pass
	cplessPre  []int       // per class, cpuless before the pass
	excl       []exclLink  // fast-path bookings, chained per node (excl.go)
	exclG      []exclRes   // their gangs

	buckets       []bucket
	bucketOf      map[stateKey]int32
	reservedNodes []int32 // Up nodes holding a reservation, ascending
	reservedFree  []int32 // those with a cpu or GPU free now, ascending
	dirtyBuckets  []int32 // indexMany's, unindexMany's scratch

	// Groups of interchangeable nodes for reservations (group.go).
	grouped      bool // built
	kept         bool // a State's, kept between passes (state.go)
	noGroups     bool // tests: every node on its own, as before groups
	groups       []group
	groupOf      map[string]int32
	freeGroups   []int32   // emptied groups, for reuse
	classGroups  [][]int32 // per class, its groups (some maybe emptied)
	loose        [][]int32 // per class, Up nodes kept out of groups, ascending
	gdirty       []int32   // nodes to regroup
	sigBuf       []byte
	sigOut       []byte
	sigRecs      [][2]int
	touchStamp   uint32
	touchCount   int
	unitBuf      []unit
	aggUnits     []unit
	mergeScratch []int32 // mergeSortedTail's
	deferIndex   bool    // commit leaves the index to its caller (a gang's start)
	deferAgg     bool    // commit leaves the aggregate profile to its caller (reserve)
	lastTaken    int64   // cpus the last commit took
}

// newCluster builds the working state from a snapshot: nodes sorted by name
// (so input order never matters), grouped in classes, with every running
// allocation taken off their free resources.
func newCluster(s Snapshot, now time.Time, prof *profile) *cluster {
	c := buildNodes(s.Nodes)
	c.now, c.loc, c.prof = now.UnixNano(), now.Location(), prof
	c.applyRunning(s.Running)
	c.indexAll()
	return c
}

// buildNodes builds the static part of the working state and every node
// wholly free: nodes sorted by name, grouped in classes.
func buildNodes(nodes []Node) *cluster {
	c := &cluster{busyWords: maxBusyWords}
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(nodes[a].Name, nodes[b].Name) })
	c.nodes = make([]node, 0, len(order))
	var classKey []byte
	classByKey := map[string]int32{}
	for _, oi := range order {
		in := &nodes[oi]
		if len(c.nodes) > 0 && c.nodes[len(c.nodes)-1].name == in.Name {
			continue // duplicate names: the first given wins
		}
		n := node{name: in.Name, state: in.State, ncpu: in.CPUs, mem: in.Memory}
		if len(in.CPUIDs) > 0 {
			n.cpuIDs = slices.Clone(in.CPUIDs)
			slices.Sort(n.cpuIDs)
			n.cpuIDs = slices.Compact(n.cpuIDs)
			n.ncpu = len(n.cpuIDs)
		}
		if n.ncpu < 0 {
			n.ncpu = 0
		}
		ng := min(len(in.GPUs), maxGPUs)
		n.gpuIndex = make([]int, len(in.GPUs))
		for i := range n.gpuIndex {
			n.gpuIndex[i] = i
		}
		slices.SortStableFunc(n.gpuIndex, func(a, b int) int { return in.GPUs[a].ID - in.GPUs[b].ID })
		n.gpuIndex = n.gpuIndex[:ng]
		n.gpus = make([]GPU, ng)
		for p, i := range n.gpuIndex {
			n.gpus[p] = in.GPUs[i]
		}
		classKey = appendClassKey(classKey[:0], in, &n)
		ci, ok := classByKey[string(classKey)]
		if !ok {
			ci = int32(len(c.classes))
			classByKey[string(classKey)] = ci
			c.classes = append(c.classes, newClass(in, &n))
		}
		n.class = ci
		cl := &c.classes[ci]
		cl.nodes = append(cl.nodes, int32(len(c.nodes)))
		if n.state == NodeUp {
			cl.up++
		}
		if n.state != NodeDown {
			cl.live++
		}
		n.freeCPU = c.cpuWords((n.ncpu + 63) / 64)
		for p := 0; p < n.ncpu; p++ {
			n.freeCPU[p/64] |= 1 << (p % 64)
		}
		n.nFreeCPU = n.ncpu
		n.freeMem = n.mem
		n.freeGPU = c.classes[ci].allGPUs
		c.setNUMA(in, &n)
		c.nodes = append(c.nodes, n)
	}
	return c
}

func newClass(in *Node, n *node) class {
	cl := class{ncpu: n.ncpu, mem: n.mem, gpus: n.gpus}
	cl.features = slices.Clone(in.Features)
	slices.Sort(cl.features)
	cl.features = slices.Compact(cl.features)
	g := len(n.gpus)
	if g == 64 {
		cl.allGPUs = ^uint64(0)
	} else {
		cl.allGPUs = 1<<g - 1
	}
	cl.sameGPUs = true
	for _, x := range n.gpus {
		cl.sameGPUs = cl.sameGPUs && x.Memory == n.gpus[0].Memory
	}
	cl.links = make([][]resources.Link, g)
	for p := range cl.links {
		cl.links[p] = make([]resources.Link, g)
		for q := range cl.links[p] {
			cl.links[p][q] = linkOf(in, n.gpuIndex[p], n.gpuIndex[q])
		}
		cl.gpuMem += n.gpus[p].Memory
	}
	return cl
}

// linkOf reads Links[i][j], treating a missing matrix or entry as
// LinkSystem, the worst real link.
func linkOf(in *Node, i, j int) resources.Link {
	if i == j {
		return resources.LinkNone
	}
	if i < len(in.Links) && j < len(in.Links[i]) && in.Links[i][j] != resources.LinkNone {
		return in.Links[i][j]
	}
	return resources.LinkSystem
}

// appendClassKey writes everything that makes two nodes schedule alike.
func appendClassKey(b []byte, in *Node, n *node) []byte {
	var feats [8]string
	fs := append(feats[:0], in.Features...)
	slices.Sort(fs)
	for _, f := range slices.Compact(fs) {
		b = append(b, f...)
		b = append(b, 0)
	}
	b = appendInt(b, int64(n.ncpu))
	b = appendInt(b, n.mem)
	for p, g := range n.gpus {
		b = append(b, g.Model...)
		b = append(b, 0)
		b = appendInt(b, g.Memory)
		for q := range n.gpus {
			b = append(b, byte(linkOf(in, n.gpuIndex[p], n.gpuIndex[q])))
		}
	}
	return b
}

func appendInt(b []byte, v int64) []byte {
	u := uint64(v)
	return append(b, 1, byte(u), byte(u>>8), byte(u>>16), byte(u>>24), byte(u>>32), byte(u>>40), byte(u>>48), byte(u>>56))
}

// applyRunning takes every running allocation off the free resources of
// its node. Allocations on unknown nodes, CPU ids or GPU ids are ignored:
// there is nothing there to protect.
func (c *cluster) applyRunning(rs []Running) {
	// Sized once, with room for a gang per node of starts and EASY's
	// reservation: growing it during the pass copied every allocation
	// again, a tenth of a pass on thousands of nodes.
	total := 0
	for ri := range rs {
		total += len(rs[ri].Nodes)
	}
	c.running = make([]runAlloc, 0, total+len(c.nodes))
	prev := -1 // gangs list their nodes in name order, mostly adjacent
	for ri := range rs {
		c.addRunning(&rs[ri], runEnd(&rs[ri], c.now), &prev, nil)
	}
}

// runEnd is when a running job's resources come free as the placer counts
// it: its End, never when it has none. An overdue job still holds its
// resources; it is about to be killed, so it is planned as if it ended
// just after now.
func runEnd(r *Running, now int64) int64 {
	if r.End.IsZero() {
		return forever
	}
	end := r.End.UnixNano()
	if end <= now {
		end = now + 1
	}
	return end
}

// addRunning books r's allocations from the past until end, and appends
// the indices of the runAllocs it made to dst. prev is the node of the
// last allocation booked, a hint for gangs listed in name order. A free
// slot of c.running is reused when one is listed in c.freeSlots (the
// kept state, state.go).
func (c *cluster) addRunning(r *Running, end int64, prev *int, dst []int32) []int32 {
	for _, a := range r.Nodes {
		ni, ok := *prev+1, *prev+1 < len(c.nodes) && c.nodes[*prev+1].name == a.Node
		if !ok {
			if ni, ok = c.find(a.Node); !ok {
				continue
			}
		}
		*prev = ni
		n := &c.nodes[ni]
		slot := int32(len(c.running))
		var cpus []uint64
		if k := len(c.freeSlots); k > 0 {
			slot = c.freeSlots[k-1]
			c.freeSlots = c.freeSlots[:k-1]
			if old := c.running[slot].cpus; cap(old) >= len(n.freeCPU) {
				cpus = old[:len(n.freeCPU)]
				clear(cpus)
			}
		}
		if cpus == nil && c.kept {
			// Its own words: a slab shared with a pass's short-lived
			// bookings would be kept alive by this job as long as it runs.
			cpus = make([]uint64, len(n.freeCPU))
		}
		if cpus == nil {
			cpus = c.cpuWords(len(n.freeCPU))
		}
		ra := runAlloc{node: int32(ni), start: pastStart, end: end, mem: a.Memory, cpus: cpus}
		for _, id := range a.CPUs {
			if p := n.cpuPos(id); p >= 0 {
				ra.cpus[p/64] |= 1 << (p % 64)
			}
		}
		for _, id := range a.GPUs {
			if p := n.gpuPos(id); p >= 0 {
				ra.gpus |= 1 << p
			}
		}
		if sh := shareOf(&Request{GPU: GPURequest{Count: 1, Share: a.GPUShare}}); sh > 0 {
			ra.share = sh
			n.addShare(ra.gpus, sh)
		}
		for w := range ra.cpus {
			n.freeCPU[w] &^= ra.cpus[w]
		}
		if popcount(ra.cpus) == 0 {
			c.classes[n.class].cpuless++
		}
		n.nFreeCPU = popcount(n.freeCPU)
		n.freeMem -= a.Memory
		n.freeGPU &^= ra.gpus
		n.busy = true
		n.allocs = append(n.allocs, slot)
		if int(slot) == len(c.running) {
			c.running = append(c.running, ra)
		} else {
			c.running[slot] = ra
		}
		dst = append(dst, slot)
	}
	return dst
}

// addShare books sh hundredths of every GPU of gpus for a sharing job:
// they are no longer wholly free.
func (n *node) addShare(gpus uint64, sh int16) {
	if n.share == nil {
		n.share = make([]int16, len(n.gpus))
	}
	for m := gpus; m != 0; m &= m - 1 {
		p := bits.TrailingZeros64(m)
		if n.share[p] == 0 {
			n.nShared++
		}
		n.share[p] += sh
	}
	n.freeGPU &^= gpus
}

func (c *cluster) find(name string) (int, bool) {
	return slices.BinarySearchFunc(c.nodes, name, func(n node, name string) int { return strings.Compare(n.name, name) })
}

func (n *node) cpuPos(id int) int {
	if n.cpuIDs == nil {
		if id >= 0 && id < n.ncpu {
			return id
		}
		return -1
	}
	if p, ok := slices.BinarySearch(n.cpuIDs, id); ok {
		return p
	}
	return -1
}

func (n *node) cpuID(p int) int {
	if n.cpuIDs == nil {
		return p
	}
	return n.cpuIDs[p]
}

func (n *node) gpuPos(id int) int {
	for p := range n.gpus {
		if n.gpus[p].ID == id {
			return p
		}
	}
	return -1
}

func popcount(ws []uint64) int {
	k := 0
	for _, w := range ws {
		k += bits.OnesCount64(w)
	}
	return k
}

// cpuWords returns a zeroed cpu bitset of w words carved from a shared
// slab: one allocation per many runAllocs instead of one each.
func (c *cluster) cpuWords(w int) []uint64 {
	if len(c.cpuSlab) < w {
		c.cpuSlab = make([]uint64, max(1024, w))
	}
	m := c.cpuSlab[:w:w]
	c.cpuSlab = c.cpuSlab[w:]
	return m
}
