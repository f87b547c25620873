package sim

import (
	"cmp"
	"slices"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// GPU fragmentation, measured independently of the placer's scorer: at
// each instant, the free GPU capacity that the workload's request shapes
// cannot use where it lies (a node too short of GPUs, CPUs or memory for a
// shape, or a shared GPU too full for it), weighted by how often each
// shape occurs among the workload's GPU jobs. Zero when every free GPU
// could serve every shape; at most the free GPU count.

// fragShape is one per-node GPU request shape of the workload.
type fragShape struct {
	gpus, cpus, share int // share in hundredths, 0 for whole GPUs
	mem               int64
	weight            float64
}

// workloadShapes collects the GPU shapes of jobs with their frequencies.
func workloadShapes(jobs []Job) []fragShape {
	type key struct {
		gpus, cpus, share int
		mem               int64
	}
	count := map[key]int{}
	total := 0
	for _, j := range jobs {
		r := &j.PerNode
		if r.GPU.Count == 0 {
			continue
		}
		sh := 0
		if r.GPU.Share > 0 && r.GPU.Share < 1 {
			sh = gpuUse(r.GPU.Share)
		}
		count[key{r.GPU.Count, r.CPUs, sh, r.Memory}]++
		total++
	}
	out := make([]fragShape, 0, len(count))
	for k, c := range count {
		out = append(out, fragShape{k.gpus, k.cpus, k.share, k.mem, float64(c) / float64(total)})
	}
	slices.SortFunc(out, func(a, b fragShape) int {
		return cmp.Or(cmp.Compare(a.gpus, b.gpus), cmp.Compare(a.share, b.share), cmp.Compare(a.cpus, b.cpus), cmp.Compare(a.mem, b.mem))
	})
	return out
}

// fragmentation is the fragmented free GPU capacity of the cluster now,
// in GPUs, and the free GPU capacity.
func (st *state) fragmentation(shapes []fragShape) (frag, free float64) {
	for ni := range st.nodes {
		n := &st.nodes[ni]
		if len(n.GPUs) == 0 || n.State != placement.NodeUp {
			continue
		}
		whole := 0
		var part []int // free hundredths of partly shared GPUs
		for _, g := range n.GPUs {
			switch u := st.gpuUsed[ni][g.ID]; {
			case u == 0:
				whole++
			case u < 100:
				part = append(part, 100-u)
			}
		}
		all := float64(whole)
		for _, p := range part {
			all += float64(p) / 100
		}
		free += all
		if all == 0 {
			continue
		}
		for _, s := range shapes {
			usable := st.cpuFree[ni] >= s.cpus && st.memFree[ni] >= s.mem
			var lost float64
			switch {
			case !usable:
				lost = all
			case s.share == 0 && s.gpus > whole:
				lost = all
			case s.share == 0:
				lost = all - float64(whole)
			default:
				fits := whole > 0
				var small float64
				for _, p := range part {
					if p >= s.share {
						fits = true
					} else {
						small += float64(p) / 100
					}
				}
				lost = small
				if !fits {
					lost = all
				}
			}
			frag += s.weight * lost
		}
	}
	return frag, free
}

// FragPoint is the cluster's GPU fragmentation from T on (seconds from
// the start of the workload) until the next point.
type FragPoint struct {
	T     float64 `json:"t_s"`
	GPUs  float64 `json:"fragmented_gpus"`
	Free  float64 `json:"free_gpus"`
	Share float64 `json:"fragmented_share"` // GPUs/Free, 0 when nothing is free
}

// fragCurve averages the step function pts over n equal spans of
// [t0, t1] (time-weighted), for printing a curve of bounded size.
func fragCurve(pts []FragPoint, t0, t1 float64, n int) []FragPoint {
	if len(pts) == 0 || t1 <= t0 || n <= 0 {
		return nil
	}
	out := make([]FragPoint, n)
	step := (t1 - t0) / float64(n)
	k := 0
	for i := range out {
		a, b := t0+float64(i)*step, t0+float64(i+1)*step
		out[i].T = a
		for k+1 < len(pts) && pts[k+1].T <= a {
			k++
		}
		for x := k; x < len(pts) && pts[x].T < b; x++ {
			lo := max(a, pts[x].T)
			hi := b
			if x+1 < len(pts) {
				hi = min(b, pts[x+1].T)
			}
			if hi > lo {
				out[i].GPUs += pts[x].GPUs * (hi - lo) / step
				out[i].Free += pts[x].Free * (hi - lo) / step
			}
		}
		if out[i].Free > 0 {
			out[i].Share = out[i].GPUs / out[i].Free
		}
	}
	return out
}

// fragMean is the time-weighted mean of pts over [t0, t1].
func fragMean(pts []FragPoint, t0, t1 float64) (gpus, share float64) {
	c := fragCurve(pts, t0, t1, 1)
	if len(c) == 0 {
		return 0, 0
	}
	return c[0].GPUs, c[0].Share
}

func since(t time.Time) float64 { return t.Sub(Epoch).Seconds() }
