package placement

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// Groups of interchangeable nodes for reservations. Two Up nodes of one
// class whose allocations are the same (same cpu positions, memory, GPUs,
// shares, start and end) answer every question a reservation asks alike:
// the window fits or not, with the same candidate, score and idle time;
// only the name differs, and the lowest name wins ties. So reserve, its
// node count and the aggregate profile look at one node per group and
// count the group's size, and a pass costs the number of distinct node
// histories, not of nodes: on a machine of identical nodes, about the
// number of running jobs. Nodes with a NUMA layout (their cpu choice, and
// so their idle time, depends on it) stay out of groups, as do nodes a
// pass has booked on (the journal's saved nodes), which are looked at one
// by one. Plugins that may tell nodes apart by name turn grouping off
// (profile.byState).
//
// The groups are kept with the state: a node whose allocations or state
// change is marked dirty and regrouped on the next reservation, so the
// cost is per change.

type group struct {
	key    string // its signature, the key in cluster.groupOf
	class  int32
	nodes  []int32 // members (and stale entries: node.group != this), sorted up to sorted
	sorted int     // nodes[:sorted] ascending; the rest appended since
	size   int     // members
	stale  bool    // nodes holds entries that left
	seen   uint32  // touchedIn's stamp
	nTouch int     // members booked on in this pass (touchedIn)
}

// unit is one thing a reservation looks at: a group through its lowest
// untouched member rep (g >= 0, n members to count), or a single node.
type unit struct {
	rep int32
	g   int32
	n   int
}

// markDirty queues node ni for regrouping.
func (c *cluster) markDirty(ni int32) {
	if !c.grouped {
		return
	}
	n := &c.nodes[ni]
	if !n.gdirty {
		n.gdirty = true
		c.gdirty = append(c.gdirty, ni)
	}
}

// ensureGroups builds the groups on first use and regroups dirty nodes
// afterwards. Nodes booked on in this pass stay dirty until the next.
func (c *cluster) ensureGroups() {
	if !c.grouped {
		c.grouped = true
		c.groupOf = map[string]int32{}
		c.classGroups = make([][]int32, len(c.classes))
		c.loose = make([][]int32, len(c.classes))
		for i := range c.nodes {
			n := &c.nodes[i]
			n.group = -1
			if c.journal && n.savedAt == c.pass {
				// Booked on in this pass: grouped by what it was, after.
				n.gdirty = true
				c.gdirty = append(c.gdirty, int32(i))
				continue
			}
			c.regroup(int32(i))
		}
		return
	}
	kept := c.gdirty[:0]
	for _, ni := range c.gdirty {
		n := &c.nodes[ni]
		if c.journal && n.savedAt == c.pass {
			kept = append(kept, ni)
			continue
		}
		n.gdirty = false
		c.leaveGroup(ni)
		c.regroup(ni)
	}
	c.gdirty = kept
}

// leaveGroup takes node ni out of its group or its class's loose list.
func (c *cluster) leaveGroup(ni int32) {
	n := &c.nodes[ni]
	if n.group >= 0 {
		g := &c.groups[n.group]
		g.size--
		g.stale = true
		if g.size == 0 {
			// Every job's end makes new histories: a group left empty is
			// forgotten and its slot reused, or a long-running daemon
			// would keep one per job it ever ran.
			delete(c.groupOf, g.key)
			c.freeGroups = append(c.freeGroups, n.group)
		}
		n.group = -1
		return
	}
	if n.loose {
		l := &c.loose[n.class]
		if i := slices.Index(*l, ni); i >= 0 {
			*l = slices.Delete(*l, i, i+1)
		}
		n.loose = false
	}
}

// regroup puts node ni (in no group) where it belongs now.
func (c *cluster) regroup(ni int32) {
	n := &c.nodes[ni]
	if n.state != NodeUp {
		return
	}
	if n.numaCPU != nil {
		l := &c.loose[n.class]
		i, _ := slices.BinarySearch(*l, ni)
		*l = slices.Insert(*l, i, ni)
		n.loose = true
		return
	}
	key := c.signature(ni)
	gi, ok := c.groupOf[string(key)]
	if !ok {
		g := group{key: string(key), class: n.class}
		if k := len(c.freeGroups); k > 0 {
			gi = c.freeGroups[k-1]
			c.freeGroups = c.freeGroups[:k-1]
			g.nodes = c.groups[gi].nodes[:0]
			c.groups[gi] = g
		} else {
			gi = int32(len(c.groups))
			c.groups = append(c.groups, g)
		}
		c.groupOf[g.key] = gi
	}
	g := &c.groups[gi]
	if g.size == 0 {
		if !slices.Contains(c.classGroups[n.class], gi) {
			c.classGroups[n.class] = append(c.classGroups[n.class], gi)
		}
	}
	g.size++
	g.nodes = append(g.nodes, ni)
	n.group = gi
}

// signature is node ni's class and its allocations, in a canonical order.
func (c *cluster) signature(ni int32) []byte {
	n := &c.nodes[ni]
	b := binary.LittleEndian.AppendUint32(c.sigBuf[:0], uint32(n.class))
	recs := c.sigRecs[:0]
	for _, ai := range n.allocs {
		r := &c.running[ai]
		from := len(b)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.start))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.end))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.mem))
		b = binary.LittleEndian.AppendUint64(b, r.gpus)
		b = binary.LittleEndian.AppendUint16(b, uint16(r.share))
		for _, w := range r.cpus {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
		recs = append(recs, [2]int{from, len(b)})
	}
	c.sigRecs = recs
	if len(recs) < 2 {
		c.sigBuf = b
		return b
	}
	slices.SortFunc(recs, func(x, y [2]int) int { return slices.Compare(b[x[0]:x[1]], b[y[0]:y[1]]) })
	out := binary.LittleEndian.AppendUint32(c.sigOut[:0], uint32(n.class))
	for _, r := range recs {
		out = append(out, b[r[0]:r[1]]...)
	}
	c.sigBuf, c.sigOut = b, out
	return out
}

// members returns group g's nodes in ascending order, dropping the
// entries of nodes that left it.
func (c *cluster) members(gi int32) []int32 {
	g := &c.groups[gi]
	if g.sorted < len(g.nodes) {
		c.mergeSortedTail(g.nodes, g.sorted)
		g.sorted = len(g.nodes)
	}
	if g.stale {
		// A node that left and came back is listed twice, side by side.
		kept := g.nodes[:0]
		for _, ni := range g.nodes {
			if c.nodes[ni].group == gi && (len(kept) == 0 || kept[len(kept)-1] != ni) {
				kept = append(kept, ni)
			}
		}
		g.nodes, g.sorted, g.stale = kept, len(kept), false
	}
	return g.nodes
}

// units lists what a reservation for a job of this profile group (gi)
// looks at in class ci: one unit per group with untouched members, one per
// other Up node. Without grouping, one unit per Up node.
func (c *cluster) units(ci int32, grouped bool, dst []unit) []unit {
	from := len(dst)
	if !grouped || c.noGroups {
		for _, ni := range c.classes[ci].nodes {
			if c.nodes[ni].state == NodeUp {
				dst = append(dst, unit{rep: ni, g: -1, n: 1})
			}
		}
		return dst
	}
	c.ensureGroups()
	c.touchedIn()
	cg := c.classGroups[ci]
	kept := cg[:0]
	for _, gi := range cg {
		g := &c.groups[gi]
		if g.size == 0 || g.class != ci {
			continue // emptied (maybe reused by another class): dropped from the class's list
		}
		kept = append(kept, gi)
		nt := 0
		if g.seen == c.pass {
			nt = g.nTouch
		}
		if g.size-nt == 0 {
			continue
		}
		for _, ni := range c.members(gi) {
			if c.nodes[ni].savedAt != c.pass || !c.journal {
				dst = append(dst, unit{rep: ni, g: gi, n: g.size - nt})
				break
			}
		}
	}
	c.classGroups[ci] = kept
	for _, ni := range c.loose[ci] {
		if !c.journal || c.nodes[ni].savedAt != c.pass {
			dst = append(dst, unit{rep: ni, g: -1, n: 1})
		}
	}
	if c.journal {
		for i := range c.saved {
			if ni := c.saved[i].node; c.nodes[ni].class == ci && c.nodes[ni].state == NodeUp {
				dst = append(dst, unit{rep: ni, g: -1, n: 1})
			}
		}
	}
	// Dirty nodes not yet regrouped (booked on in this pass) are among
	// the saved ones above.
	slices.SortFunc(dst[from:], func(a, b unit) int { return cmp.Compare(a.rep, b.rep) })
	return dst
}

// touchedIn counts, once per pass, the members of each group booked on
// in this pass.
func (c *cluster) touchedIn() {
	if !c.journal || c.touchStamp == c.pass && c.touchCount == len(c.saved) {
		return
	}
	for i := range c.saved {
		if gi := c.nodes[c.saved[i].node].group; gi >= 0 {
			c.groups[gi].seen = 0
		}
	}
	for i := range c.saved {
		if gi := c.nodes[c.saved[i].node].group; gi >= 0 {
			g := &c.groups[gi]
			if g.seen != c.pass {
				g.seen, g.nTouch = c.pass, 0
			}
			g.nTouch++
		}
	}
	c.touchStamp, c.touchCount = c.pass, len(c.saved)
}

// eachMember calls fn for up to max untouched members of unit u, in name
// order (a single node: itself).
func (c *cluster) eachMember(u unit, max int, fn func(ni int32)) {
	if u.g < 0 {
		fn(u.rep)
		return
	}
	k := 0
	for _, ni := range c.members(u.g) {
		if k == max {
			return
		}
		if c.journal && c.nodes[ni].savedAt == c.pass {
			continue
		}
		fn(ni)
		k++
	}
}

// unitPick is a node a reservation takes, with the unit candidate
// (planner.rcands) it stands for.
type unitPick struct {
	node int32
	cand int32
}

// pickUnits returns the need best nodes of the unit candidates in
// pl.rcands (their units in pl.uix), in the order sortReserve puts all
// their members: by rank, then by node. Members of a unit rank alike and
// go by name, so only the first need of each can be among the best, and
// only the units that rank alike need their members sorted together.
func (pl *planner) pickUnits(us []unit, need int, byIdle bool) []unitPick {
	c, ucs := pl.c, pl.rcands
	order := pl.uorder[:0]
	for i := range ucs {
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int { return cmpReserve(&ucs[a], &ucs[b], byIdle) })
	pl.uorder = order
	out := pl.upicks[:0]
	for g := 0; g < len(order) && len(out) < need; {
		h := g + 1
		for h < len(order) && cmpRank(&ucs[order[g]], &ucs[order[h]], byIdle) == 0 {
			h++
		}
		from, rem := len(out), need-len(out)
		for _, x := range order[g:h] {
			c.eachMember(us[pl.uix[x]], rem, func(ni int32) { out = append(out, unitPick{ni, x}) })
		}
		if h-g > 1 {
			grp := out[from:]
			slices.SortFunc(grp, func(a, b unitPick) int { return int(a.node) - int(b.node) })
		}
		out = out[:min(len(out), need)]
		g = h
	}
	pl.upicks = out
	return out
}
