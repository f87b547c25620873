package placement

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
)

// GPUFragmentation is fragmentation-aware GPU packing after Fragmentation
// Gradient Descent (Weng et al., USENIX ATC '23). A node's fragmentation
// for a request shape is the free GPU capacity that shape cannot use
// there: all of it when the shape does not fit the node at all (too few
// matching GPUs, CPUs or memory left, or no GPU of a model it accepts),
// else the free capacity it cannot take: partly shared GPUs too full for
// it and GPUs of other models. Weighted by how many pending jobs ask for
// each shape, that is the node's expected waste; the cost of a placement
// is how much it grows, so the job goes where it breaks up the least of
// what the queue needs. Models make it prefer, for a job that accepts
// any GPU, the nodes whose GPUs fewer pending jobs can use: their loss
// counts for no other shape, so taking them costs nothing, or less.
type GPUFragmentation struct{}

// Name implements Scorer.
func (GPUFragmentation) Name() string { return "gpu-fragmentation" }

// Props implements Scorer: the cost reads only the node's class and free
// state and the job's shape; it is not monotone (a fuller node can be a
// better home), so it turns the search's early stop off for GPU jobs.
func (GPUFragmentation) Props() Props { return StateOnly | ShapeOnly | GPUJobsOnly }

// Cost implements Scorer: fragmentation after minus before, in GPUs.
func (GPUFragmentation) Cost(j *Job, n *NodeView, q *Queue) float64 {
	if len(n.GPUs) == 0 || len(q.GPUShapes) == 0 || j.PerNode.GPU.Count == 0 {
		return 0 // GPUJobsOnly: CPU-only jobs cost nothing
	}
	var okBuf [maxShapes]uint64
	ok := shapeGPUs(q, n.GPUs, okBuf[:len(q.GPUShapes)])
	before := nodeFrag(q, ok, n.FreeCPUs, n.FreeMemory, n.FreeGPUs, n.GPUShareUsed)
	r := &j.PerNode
	free := n.FreeGPUs &^ n.TakeGPUs
	shares := n.GPUShareUsed
	if sh := shareOf(r); sh > 0 {
		var buf [maxGPUs]int16
		after := buf[:len(n.GPUs)]
		copy(after, shares)
		for m := n.TakeGPUs; m != 0; m &= m - 1 {
			after[bits.TrailingZeros64(m)] += sh
		}
		shares = after
	}
	return nodeFrag(q, ok, n.FreeCPUs-r.CPUs, n.FreeMemory-r.Memory, free, shares) - before
}

// shapeGPUs fills ok[i] with the positions of the GPUs that shape i of q
// accepts (model and GPU memory). A node's GPUs are mostly of one model,
// so the model is matched once per run of equal names.
func shapeGPUs(q *Queue, gpus []GPU, ok []uint64) []uint64 {
	var match uint64 // bit i: shape i accepts the current model
	for p, g := range gpus {
		if p == 0 || g.Model != gpus[p-1].Model {
			match = 0
			for i := range q.GPUShapes {
				if acceptsModel(g.Model, q.GPUShapes[i].models) {
					match |= 1 << i
				}
			}
		}
		for i := range q.GPUShapes {
			if match&(1<<i) != 0 && g.Memory >= q.GPUShapes[i].MinMemory {
				ok[i] |= 1 << p
			}
		}
	}
	return ok
}

// acceptsModel is modelMatches without lower-casing the model (which
// would allocate for every node scored): alts are lower case already.
func acceptsModel(model string, alts []string) bool {
	if len(alts) == 0 {
		return true
	}
	for _, a := range alts {
		if containsFold(model, a) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII sub,
// ignoring the case of s.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		k := 0
		for ; k < len(sub); k++ {
			c := s[i+k]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[k] {
				break
			}
		}
		if k == len(sub) {
			return true
		}
	}
	return false
}

// nodeFrag is the expected fragmentation of a node state over q's shapes;
// ok[i] holds the GPUs shape i accepts.
func nodeFrag(q *Queue, ok []uint64, cpus int, mem int64, whole uint64, shares []int16) float64 {
	var partFree float64 // free hundredths on shared GPUs
	for _, s := range shares {
		if s > 0 && s < 100 {
			partFree += float64(100 - s)
		}
	}
	all := float64(bits.OnesCount64(whole)) + partFree/100
	if all == 0 {
		return 0
	}
	var f float64
	for i, s := range q.GPUShapes {
		w := bits.OnesCount64(whole & ok[i]) // wholly free GPUs it accepts
		lost := all
		switch {
		case ok[i] == 0 || s.CPUs > cpus || s.Memory > mem:
		case s.Share == 0:
			if s.Count <= w {
				lost = all - float64(w)
			}
		default:
			usable := float64(w)
			for p, u := range shares {
				if u > 0 && u < 100 && 100-u >= s.Share && ok[i]&(1<<p) != 0 {
					usable += float64(100-u) / 100
				}
			}
			if usable > 0 {
				lost = all - usable
			}
		}
		f += s.Weight * lost
	}
	return f
}

// Queue is what a pass tells scorers about the workload as a whole.
type Queue struct {
	// GPUShapes are the per-node shapes of the pending and the running
	// GPU jobs, most asked first (at most maxShapes), with weights
	// summing to 1.
	GPUShapes []GPUShape
}

// GPUShape is one per-node request shape of GPU jobs.
type GPUShape struct {
	Count  int
	Share  int16 // hundredths of one GPU; 0: whole GPUs
	CPUs   int
	Memory int64
	// Model is the request's GPU model, lower case ("" for any), and
	// MinMemory its least GPU memory: which GPUs the shape can use.
	Model     string
	MinMemory int64
	Weight    float64 // the fraction of the jobs counted with this shape

	models []string // Model's alternatives, blanks trimmed; nil for any
}

// maxShapes bounds the shapes a pass scores against, and minShapeShare
// drops those fewer jobs ask (a running job of an odd size makes a shape
// of its own): the tail of rare shapes changes the sums little and would
// cost every evaluation.
const (
	maxShapes     = 16
	minShapeShare = 0.01
)

// queueShapes summarises the GPU jobs' shapes, deterministically. FGD
// weighs fragmentation by the workload's distribution of shapes; the
// pending jobs alone are a poor sample of it (the large ones wait, so
// they crowd the queue, and a quiet queue says nothing of what comes
// next), so the running jobs count too, one each, as a sample of what
// has been arriving. A running job's shape is what it holds on its first
// node; Running carries no request, so its model constraint is unknown
// and it counts as accepting any GPU.
func queueShapes(pending []Job, running []Running) Queue {
	type key struct {
		count, cpus int
		share       int16
		mem         int64
		model       string
		minMem      int64
	}
	n := map[key]int{}
	total := 0
	for i := range pending {
		r := &pending[i].PerNode
		if r.GPU.Count == 0 {
			continue
		}
		n[key{r.GPU.Count, r.CPUs, shareOf(r), r.Memory, strings.ToLower(r.GPU.Model), r.GPU.MinMemory}]++
		total++
	}
	for i := range running {
		if len(running[i].Nodes) == 0 || len(running[i].Nodes[0].GPUs) == 0 {
			continue
		}
		a := &running[i].Nodes[0]
		sh := int16(0)
		if len(a.GPUs) == 1 {
			sh = shareOf(&Request{GPU: GPURequest{Count: 1, Share: a.GPUShare}})
		}
		n[key{count: len(a.GPUs), cpus: len(a.CPUs), share: sh, mem: a.Memory}]++
		total++
	}
	if total == 0 {
		return Queue{}
	}
	shapes := make([]GPUShape, 0, len(n))
	for k, c := range n {
		s := GPUShape{Count: k.count, Share: k.share, CPUs: k.cpus, Memory: k.mem, Model: k.model, MinMemory: k.minMem, Weight: float64(c)}
		if k.model != "" {
			for _, a := range strings.Split(k.model, "|") {
				s.models = append(s.models, strings.TrimSpace(a))
			}
		}
		shapes = append(shapes, s)
	}
	slices.SortFunc(shapes, func(a, b GPUShape) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Count, b.Count), cmp.Compare(a.Share, b.Share), cmp.Compare(a.CPUs, b.CPUs),
			cmp.Compare(a.Memory, b.Memory), cmp.Compare(a.Model, b.Model), cmp.Compare(a.MinMemory, b.MinMemory))
	})
	shapes = shapes[:min(len(shapes), maxShapes)]
	for k := 1; k < len(shapes); k++ {
		if shapes[k].Weight < minShapeShare*float64(total) {
			shapes = shapes[:k] // sorted by weight: the rest are rarer
			break
		}
	}
	var kept float64
	for _, s := range shapes {
		kept += s.Weight
	}
	for i := range shapes {
		shapes[i].Weight /= kept
	}
	return Queue{GPUShapes: shapes}
}

// LeastLeft is plain best fit: the node left with the smallest share of
// the resource the job asks most of (cpus, memory or GPUs). The best-fit
// baseline for the simulator and tests, and the smallest example of a
// scorer (docs/architecture.md).
type LeastLeft struct{}

// Name implements Scorer.
func (LeastLeft) Name() string { return "least-left" }

// Props implements Scorer.
func (LeastLeft) Props() Props { return StateOnly | ShapeOnly | Monotone }

// Cost implements Scorer.
func (LeastLeft) Cost(j *Job, n *NodeView, _ *Queue) float64 {
	r := &j.PerNode
	type res struct{ want, free, capa float64 }
	rs := [3]res{
		{float64(r.CPUs), float64(n.FreeCPUs), float64(n.CPUs)},
		{float64(r.Memory), float64(n.FreeMemory), float64(n.Memory)},
		{float64(r.GPU.Count), float64(bits.OnesCount64(n.FreeGPUs)), float64(len(n.GPUs))},
	}
	best, left := -1.0, 0.0
	for _, x := range rs {
		if x.capa > 0 && x.want/x.capa > best {
			best, left = x.want/x.capa, (x.free-x.want)/x.capa
		}
	}
	return left
}
