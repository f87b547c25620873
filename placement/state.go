package placement

import (
	"container/heap"
	"slices"
	"time"
)

// State is the placer's working copy of a cluster kept between passes and
// updated by deltas: a job started or ended (Start, End), a node changed
// (SetNode, RemoveNode). A pass (State.Plan) then costs what changed since
// the last one and what the pending jobs it considers make it look at,
// not a rebuild of every node: Plan(Snapshot) builds the same state from
// scratch for one pass and runs the very same code on it.
//
// State.Plan stays a pure function of the state's contents and its
// arguments: what a pass books (starts, reservations) is journalled and
// put back when it returns, so the state is what the deltas made it. The
// caller applies the starts it acts on with Start, as it would learn of
// any other. A State is not safe for concurrent use.
type State struct {
	c      *cluster
	nodes  []Node         // the nodes as last given, one per name
	nodeAt map[string]int // name -> index in nodes
	runs   []Running      // running jobs, in the order Plan's preemption sees them
	meta   []runMeta      // per runs entry
	byID   map[uint64]int // job id -> index in runs
	ends   endHeap        // finite ends of running jobs, for overdue ones (lazy)
	late   []uint64       // running jobs past their End, planned as ending just after now
	stale  bool           // a node's shape changed: rebuild before the next pass
	last   int64          // now of the last pass

	touched []int32 // Start's scratch

	// Sync's: the pass number each node name and job id was last given in.
	syncSeq  uint64
	nodeSeen map[string]uint64
	runSeen  map[uint64]uint64
}

// runMeta is what the state keeps of a running job besides its Running.
type runMeta struct {
	allocs []int32 // its entries in c.running
	end    int64   // its End in ns, forever when none
	late   bool    // listed in State.late
}

// NewState builds the kept state of a cluster and what runs on it. Node
// names are unique: of several with one name the first counts, as in
// Plan. Job ids are unique: Start with a known id replaces that job.
func NewState(nodes []Node, running []Running) *State {
	s := &State{nodeAt: make(map[string]int, len(nodes)), byID: make(map[uint64]int, len(running)), last: -forever}
	for _, n := range nodes {
		if _, dup := s.nodeAt[n.Name]; dup {
			continue
		}
		s.nodeAt[n.Name] = len(s.nodes)
		s.nodes = append(s.nodes, cloneNode(n))
	}
	for _, r := range running {
		r = cloneRunning(r)
		if i, ok := s.byID[r.JobID]; ok {
			s.runs[i] = r // replaced before the cluster is built
			continue
		}
		s.byID[r.JobID] = len(s.runs)
		s.runs = append(s.runs, r)
		s.meta = append(s.meta, runMeta{})
	}
	s.rebuild()
	return s
}

// rebuild builds the cluster from the nodes and running jobs.
func (s *State) rebuild() {
	c := buildNodes(s.nodes)
	c.kept = true
	prev := -1
	s.ends = s.ends[:0]
	s.late = s.late[:0]
	for i := range s.runs {
		m := &s.meta[i]
		m.end, m.late = runEnd(&s.runs[i], -forever), false
		m.allocs = c.addRunning(&s.runs[i], m.end, &prev, m.allocs[:0])
		if m.end != forever {
			s.ends = append(s.ends, endAt{m.end, s.runs[i].JobID})
		}
	}
	heap.Init(&s.ends)
	c.indexAll()
	s.c, s.stale, s.last = c, false, -forever
}

// Start records a job that started (or is found running): its resources
// are taken until its End. A job id already known is replaced.
func (s *State) Start(r Running) {
	r = cloneRunning(r)
	if _, ok := s.byID[r.JobID]; ok {
		s.End(r.JobID)
	}
	s.byID[r.JobID] = len(s.runs)
	s.runs = append(s.runs, r)
	m := runMeta{end: runEnd(&r, -forever)}
	if !s.stale {
		c := s.c
		prev := -1
		touched := c.nodesOf(&r, s.touched[:0])
		c.unindexMany(touched)
		m.allocs = c.addRunning(&r, m.end, &prev, nil)
		for _, ni := range touched {
			c.markDirty(ni)
		}
		c.indexMany(c.upOnly(touched))
		s.touched = touched[:0]
	}
	s.meta = append(s.meta, m)
	if m.end != forever {
		heap.Push(&s.ends, endAt{m.end, r.JobID})
	}
}

// End records that a running job ended or was stopped: its resources are
// free. It reports whether the job was known.
func (s *State) End(jobID uint64) bool {
	i, ok := s.byID[jobID]
	if !ok {
		return false
	}
	if !s.stale {
		c := s.c
		touched := c.nodesOf(&s.runs[i], s.touched[:0])
		c.unindexMany(touched)
		for _, ai := range s.meta[i].allocs {
			c.releaseAlloc(ai)
		}
		for _, ni := range touched {
			c.markDirty(ni)
		}
		c.indexMany(c.upOnly(touched))
		s.touched = touched[:0]
	}
	last := len(s.runs) - 1
	if i != last {
		s.runs[i], s.meta[i] = s.runs[last], s.meta[last]
		s.byID[s.runs[i].JobID] = i
	}
	s.runs[last], s.meta[last] = Running{}, runMeta{}
	s.runs, s.meta = s.runs[:last], s.meta[:last]
	delete(s.byID, jobID)
	if len(s.ends) > 2*len(s.runs)+64 {
		s.compactEnds()
	}
	return true
}

// SetNode records a node that appeared or changed. A change of its state
// alone (Up, Draining, Down) is a delta; any other change of its shape
// rebuilds the state before the next pass, as hardware rarely changes.
func (s *State) SetNode(n Node) {
	n = cloneNode(n)
	i, ok := s.nodeAt[n.Name]
	if !ok {
		s.nodeAt[n.Name] = len(s.nodes)
		s.nodes = append(s.nodes, n)
		s.stale = true
		return
	}
	old := s.nodes[i]
	s.nodes[i] = n
	if s.stale {
		return
	}
	old.State = n.State
	if !sameShape(&old, &n) {
		s.stale = true
		return
	}
	c := s.c
	ni, ok := c.find(n.Name)
	if !ok {
		s.stale = true
		return
	}
	nd := &c.nodes[ni]
	if nd.state == n.State {
		return
	}
	cl := &c.classes[nd.class]
	if nd.state == NodeUp {
		c.unindex(int32(ni))
		cl.up--
	}
	if nd.state != NodeDown {
		cl.live--
	}
	nd.state = n.State
	c.markDirty(int32(ni))
	if nd.state != NodeDown {
		cl.live++
	}
	if nd.state == NodeUp {
		cl.up++
		c.index(int32(ni))
	}
}

// RemoveNode forgets a node; the state is rebuilt before the next pass.
func (s *State) RemoveNode(name string) {
	i, ok := s.nodeAt[name]
	if !ok {
		return
	}
	last := len(s.nodes) - 1
	if i != last {
		s.nodes[i] = s.nodes[last]
		s.nodeAt[s.nodes[i].Name] = i
	}
	s.nodes = s.nodes[:last]
	delete(s.nodeAt, name)
	s.stale = true
}

// Running returns the running jobs the state holds, in its order; the
// slice is the state's own and changes with the next delta.
func (s *State) Running() []Running { return s.runs }

// Nodes returns the nodes the state holds; the slice is the state's own.
func (s *State) Nodes() []Node { return s.nodes }

// Plan is placement.Plan over the kept state: which pending jobs start now
// and where, and why the others wait. The state is left as it was.
func (s *State) Plan(pending []Job, now time.Time, p Policy) Decisions {
	if s.stale {
		s.rebuild()
	}
	c := s.c
	c.now, c.loc, c.prof = now.UnixNano(), now.Location(), newProfile(p)
	s.markLate(c.now)
	c.beginPass()
	d := c.plan(pending, s.runs, now, p)
	c.endPass()
	return d
}

// markLate plans every running job past its End as ending just after now
// (runEnd), as a rebuilt cluster would.
func (s *State) markLate(now int64) {
	if now < s.last {
		// Time went back: late jobs may not be late any more.
		for _, id := range s.late {
			if i, ok := s.byID[id]; ok && s.meta[i].late {
				m := &s.meta[i]
				m.late = false
				s.setEnd(m, m.end)
				heap.Push(&s.ends, endAt{m.end, id})
			}
		}
		s.late = s.late[:0]
	}
	s.last = now
	for len(s.ends) > 0 && s.ends[0].end <= now {
		e := heap.Pop(&s.ends).(endAt)
		if i, ok := s.byID[e.id]; ok && s.meta[i].end == e.end && !s.meta[i].late {
			s.meta[i].late = true
			s.late = append(s.late, e.id)
		}
	}
	kept := s.late[:0]
	for _, id := range s.late {
		if i, ok := s.byID[id]; ok && s.meta[i].late {
			kept = append(kept, id)
			s.setEnd(&s.meta[i], now+1)
		}
	}
	s.late = kept
}

func (s *State) setEnd(m *runMeta, end int64) {
	for _, ai := range m.allocs {
		s.c.running[ai].end = end
		s.c.markDirty(s.c.running[ai].node)
	}
}

// compactEnds drops the heap entries of jobs no longer running.
func (s *State) compactEnds() {
	kept := s.ends[:0]
	for _, e := range s.ends {
		if i, ok := s.byID[e.id]; ok && s.meta[i].end == e.end && !s.meta[i].late {
			kept = append(kept, e)
		}
	}
	s.ends = kept
	heap.Init(&s.ends)
}

// sameShape reports whether two nodes schedule alike but for their state.
func sameShape(a, b *Node) bool {
	if a.Name != b.Name || a.State != b.State || a.CPUs != b.CPUs || a.Memory != b.Memory ||
		!slices.Equal(a.Features, b.Features) || !slices.Equal(a.CPUIDs, b.CPUIDs) ||
		!slices.Equal(a.GPUs, b.GPUs) || len(a.NUMA) != len(b.NUMA) || len(a.Links) != len(b.Links) {
		return false
	}
	for i := range a.NUMA {
		if !slices.Equal(a.NUMA[i], b.NUMA[i]) {
			return false
		}
	}
	for i := range a.Links {
		if !slices.Equal(a.Links[i], b.Links[i]) {
			return false
		}
	}
	return true
}

// endAt is a running job's End, for finding the overdue ones.
type endAt struct {
	end int64
	id  uint64
}

type endHeap []endAt

func (h endHeap) Len() int { return len(h) }
func (h endHeap) Less(a, b int) bool {
	if h[a].end != h[b].end {
		return h[a].end < h[b].end
	}
	return h[a].id < h[b].id
}
func (h endHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *endHeap) Push(x any)   { *h = append(*h, x.(endAt)) }
func (h *endHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// nodesOf appends the distinct known nodes r runs on to dst.
func (c *cluster) nodesOf(r *Running, dst []int32) []int32 {
	c.pass++ // marks the nodes seen, as the journal does (savedAt)
	prev := -1
	for _, a := range r.Nodes {
		ni, ok := prev+1, prev+1 < len(c.nodes) && c.nodes[prev+1].name == a.Node
		if !ok {
			if ni, ok = c.find(a.Node); !ok {
				continue
			}
		}
		prev = ni
		if n := &c.nodes[ni]; n.savedAt != c.pass {
			n.savedAt = c.pass
			dst = append(dst, int32(ni))
		}
	}
	return dst
}

// upOnly filters nis down to the Up nodes, the ones the index holds.
func (c *cluster) upOnly(nis []int32) []int32 {
	kept := nis[:0]
	for _, ni := range nis {
		if c.nodes[ni].state == NodeUp {
			kept = append(kept, ni)
		}
	}
	return kept
}

// Sync brings the state to these nodes and running jobs by deltas, for a
// caller that rebuilds its lists each pass rather than reporting events
// (the daemon's scheduler): a node or job that is unchanged costs a
// comparison, not a rebuild; changed ones go through SetNode, Start and
// End, gone ones through RemoveNode and End. Order does not matter.
func (s *State) Sync(nodes []Node, running []Running) {
	s.syncSeq++
	seq := s.syncSeq
	if s.nodeSeen == nil {
		s.nodeSeen = map[string]uint64{}
	}
	for i := range nodes {
		n := &nodes[i]
		if s.nodeSeen[n.Name] == seq {
			continue // a duplicate name: the first counts
		}
		s.nodeSeen[n.Name] = seq
		if j, ok := s.nodeAt[n.Name]; !ok || !sameShape(&s.nodes[j], n) {
			s.SetNode(*n)
		}
	}
	if len(s.nodeSeen) > len(s.nodes) {
		for name, at := range s.nodeSeen {
			if at != seq {
				delete(s.nodeSeen, name)
			}
		}
	}
	for i := len(s.nodes) - 1; i >= 0; i-- {
		if name := s.nodes[i].Name; s.nodeSeen[name] != seq {
			s.RemoveNode(name)
			delete(s.nodeSeen, name)
		}
	}
	if s.runSeen == nil {
		s.runSeen = map[uint64]uint64{}
	}
	for i := range running {
		r := &running[i]
		if s.runSeen[r.JobID] == seq {
			continue // a duplicate id: the first counts
		}
		s.runSeen[r.JobID] = seq
		if j, ok := s.byID[r.JobID]; !ok || !sameRunning(&s.runs[j], r) {
			s.Start(*r)
		}
	}
	for i := len(s.runs) - 1; i >= 0; i-- {
		if id := s.runs[i].JobID; s.runSeen[id] != seq {
			s.End(id)
			delete(s.runSeen, id)
		}
	}
	if len(s.runSeen) > 2*len(s.runs)+64 {
		for id, at := range s.runSeen {
			if at != seq {
				delete(s.runSeen, id)
			}
		}
	}
}

// sameRunning reports whether two records of a running job say the same.
func sameRunning(a, b *Running) bool {
	if a.JobID != b.JobID || !a.End.Equal(b.End) || a.Priority != b.Priority || a.Preemptible != b.Preemptible ||
		!a.Since.Equal(b.Since) || a.Stopping != b.Stopping || len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for i := range a.Nodes {
		x, y := &a.Nodes[i], &b.Nodes[i]
		if x.Node != y.Node || x.Memory != y.Memory || x.GPUShare != y.GPUShare ||
			!slices.Equal(x.CPUs, y.CPUs) || !slices.Equal(x.GPUs, y.GPUs) {
			return false
		}
	}
	return true
}

// cloneNode and cloneRunning copy what the state keeps, so that a caller
// changing its own slices in place later cannot change the state behind
// its back (Sync compares against these copies).
func cloneNode(n Node) Node {
	n.Features, n.CPUIDs, n.GPUs = slices.Clone(n.Features), slices.Clone(n.CPUIDs), slices.Clone(n.GPUs)
	n.NUMA = slices.Clone(n.NUMA)
	for i := range n.NUMA {
		n.NUMA[i] = slices.Clone(n.NUMA[i])
	}
	n.Links = slices.Clone(n.Links)
	for i := range n.Links {
		n.Links[i] = slices.Clone(n.Links[i])
	}
	return n
}

func cloneRunning(r Running) Running {
	r.Nodes = slices.Clone(r.Nodes)
	for i := range r.Nodes {
		a := &r.Nodes[i]
		a.CPUs, a.GPUs = slices.Clone(a.CPUs), slices.Clone(a.GPUs)
	}
	return r
}
