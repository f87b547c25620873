package placement

import (
	"cmp"
	"math/bits"
	"slices"
)

// GPUFragmentation is fragmentation-aware GPU packing after Fragmentation
// Gradient Descent (Weng et al., USENIX ATC '23). A node's fragmentation
// for a request shape is the free GPU capacity that shape cannot use
// there: all of it when the shape does not fit the node at all (too few
// GPUs, CPUs or memory left), else the partly shared GPUs too full for it.
// Weighted by how many pending jobs ask for each shape, that is the
// node's expected waste; the cost of a placement is how much it grows,
// so the job goes where it breaks up the least of what the queue needs.
// GPU models are not part of a shape: a shape's weight counts on every
// node, a deliberate simplification the measurements in
// docs/benchmarks.md were made with.
type GPUFragmentation struct{}

// Name implements Scorer.
func (GPUFragmentation) Name() string { return "gpu-fragmentation" }

// Props implements Scorer: the cost reads only the node's class and free
// state and the job's shape; it is not monotone (a fuller node can be a
// better home), so it turns the search's early stop off for GPU jobs.
func (GPUFragmentation) Props() Props { return StateOnly | ShapeOnly | GPUJobsOnly }

// Cost implements Scorer: fragmentation after minus before, in GPUs.
func (GPUFragmentation) Cost(j *Job, n *NodeView, q *Queue) float64 {
	if len(n.GPUs) == 0 || len(q.GPUShapes) == 0 {
		return 0
	}
	before := nodeFrag(q, n.FreeCPUs, n.FreeMemory, n.FreeGPUs, n.GPUShareUsed)
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
	return nodeFrag(q, n.FreeCPUs-r.CPUs, n.FreeMemory-r.Memory, free, shares) - before
}

// nodeFrag is the expected fragmentation of a node state over q's shapes.
func nodeFrag(q *Queue, cpus int, mem int64, whole uint64, shares []int16) float64 {
	w := bits.OnesCount64(whole)
	var partFree float64 // free hundredths on shared GPUs
	for _, s := range shares {
		if s > 0 && s < 100 {
			partFree += float64(100 - s)
		}
	}
	all := float64(w) + partFree/100
	if all == 0 {
		return 0
	}
	var f float64
	for _, s := range q.GPUShapes {
		var lost float64
		switch {
		case s.CPUs > cpus || s.Memory > mem:
			lost = all
		case s.Share == 0 && s.Count > w:
			lost = all
		case s.Share == 0:
			lost = partFree / 100
		default:
			fits := w > 0
			var small float64
			for _, u := range shares {
				if u > 0 && u < 100 {
					if 100-u >= s.Share {
						fits = true
					} else {
						small += float64(100 - u)
					}
				}
			}
			if fits {
				lost = small / 100
			} else {
				lost = all
			}
		}
		f += s.Weight * lost
	}
	return f
}

// Queue is what a pass tells scorers about the pending queue as a whole.
type Queue struct {
	// GPUShapes are the per-node shapes of the pending GPU jobs, most
	// asked first (at most maxShapes), with weights summing to 1.
	GPUShapes []GPUShape
}

// GPUShape is one per-node request shape of pending GPU jobs.
type GPUShape struct {
	Count  int
	Share  int16 // hundredths of one GPU; 0: whole GPUs
	CPUs   int
	Memory int64
	Weight float64 // the fraction of pending GPU jobs with this shape
}

// maxShapes bounds the shapes a pass scores against: the tail of rare
// shapes changes the sums little and would cost every evaluation.
const maxShapes = 16

// queueShapes summarises the pending GPU jobs' shapes, deterministically.
func queueShapes(jobs []Job) Queue {
	type key struct {
		count, cpus int
		share       int16
		mem         int64
	}
	n := map[key]int{}
	total := 0
	for i := range jobs {
		r := &jobs[i].PerNode
		if r.GPU.Count == 0 {
			continue
		}
		n[key{r.GPU.Count, r.CPUs, shareOf(r), r.Memory}]++
		total++
	}
	if total == 0 {
		return Queue{}
	}
	shapes := make([]GPUShape, 0, len(n))
	for k, c := range n {
		shapes = append(shapes, GPUShape{Count: k.count, Share: k.share, CPUs: k.cpus, Memory: k.mem, Weight: float64(c)})
	}
	slices.SortFunc(shapes, func(a, b GPUShape) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Count, b.Count), cmp.Compare(a.Share, b.Share), cmp.Compare(a.CPUs, b.CPUs), cmp.Compare(a.Memory, b.Memory))
	})
	shapes = shapes[:min(len(shapes), maxShapes)]
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
