package sim

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
)

// GPUWorkloadOptions shapes a generated GPU workload. Zero fields take the
// defaults in the comments.
type GPUWorkloadOptions struct {
	Seed uint64 // the stream is a pure function of the options
	Jobs int    // 2000
	// Cluster: CPU-only nodes (64 CPUs, 256 GiB), 8-GPU NVSwitch nodes
	// (H100), 4-GPU nodes bridged in NVLink pairs (A100) and 8-GPU PCIe
	// two-socket nodes (L40S). 16, 8, 8, 4; a negative count means none.
	CPUNodes, NVSwitchNodes, PairNodes, PCIeNodes int
	// Load is the offered GPU load: GPU-seconds asked over GPU-seconds the
	// cluster has during the arrival span. 0.9.
	Load float64
	// ShareJobs is the fraction of 1-GPU jobs turned into GPU-sharing
	// jobs (share 0.25 or 0.5, 2 CPUs, 16 GiB); ModelJobs the fraction of
	// GPU jobs that accept only some models ("H100|A100" or "L40S").
	// Both 0 by default; they draw from their own random stream, so the
	// other jobs and all run times stay the same whatever they are (the
	// arrivals rescale to keep the offered load).
	ShareJobs, ModelJobs float64
}

func (o GPUWorkloadOptions) withDefaults() GPUWorkloadOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
		*v = max(*v, 0)
	}
	def(&o.Jobs, 2000)
	def(&o.CPUNodes, 16)
	def(&o.NVSwitchNodes, 8)
	def(&o.PairNodes, 8)
	def(&o.PCIeNodes, 4)
	if o.Load <= 0 {
		o.Load = 0.9
	}
	return o
}

const gib = int64(1) << 30

// nodeType is one kind of machine of the generated cluster.
type nodeType struct {
	prefix string
	cpus   int
	memory int64
	model  string
	gpuMem int64
	links  func(n int) [][]resources.Link
	gpus   int
}

// Node names sort a100 < cpu < h100 < l40s, as a site naming nodes by
// model would have them; plain first fit walks them in that order, so it
// meets GPU nodes before CPU nodes — exactly the case the scoring's "keep
// CPU work off GPU nodes" is for.
var (
	cpuType  = nodeType{prefix: "cpu", cpus: 64, memory: 256 * gib}
	h100Type = nodeType{prefix: "h100-", cpus: 112, memory: 2048 * gib, model: "NVIDIA H100 80GB HBM3", gpuMem: 80 * gib, links: resources.NVSwitchLinks, gpus: 8}
	a100Type = nodeType{prefix: "a100-", cpus: 64, memory: 512 * gib, model: "NVIDIA A100-PCIE-40GB", gpuMem: 40 * gib, links: resources.NVLinkPairsLinks, gpus: 4}
	l40sType = nodeType{prefix: "l40s-", cpus: 64, memory: 768 * gib, model: "NVIDIA L40S", gpuMem: 48 * gib, links: resources.TwoSocketLinks, gpus: 8}
)

func (t nodeType) node(i int) placement.Node {
	n := placement.Node{Name: fmt.Sprintf("%s%02d", t.prefix, i), CPUs: t.cpus, Memory: t.memory}
	for g := 0; g < t.gpus; g++ {
		n.GPUs = append(n.GPUs, placement.GPU{ID: g, Model: t.model, Memory: t.gpuMem})
	}
	if t.gpus > 0 {
		n.Links = t.links(t.gpus)
	}
	return n
}

// GPUCluster builds the heterogeneous cluster of the options.
func GPUCluster(o GPUWorkloadOptions) []placement.Node {
	o = o.withDefaults()
	var nodes []placement.Node
	for _, tc := range []struct {
		t nodeType
		n int
	}{{cpuType, o.CPUNodes}, {h100Type, o.NVSwitchNodes}, {a100Type, o.PairNodes}, {l40sType, o.PCIeNodes}} {
		for i := range tc.n {
			nodes = append(nodes, tc.t.node(i))
		}
	}
	return nodes
}

// GenerateGPUWorkload returns the cluster and a job stream for it, the
// same for the same options. The mix, per job:
//
//	35% CPU-only: 4..64 CPUs, 4 GiB per CPU; one in six spans 2-4 nodes
//	25% 1 GPU (one in ten wants >= 48 GiB GPU memory)
//	15% 2 GPUs, half with link = "nvlink"
//	12% 4 GPUs, a third with link = "nvlink"
//	 8% 8 GPUs on one node
//	 5% multi-node: 2-4 nodes x 8 GPUs, or 2 nodes x 4 GPUs
//
// GPU jobs take 8 CPUs (48 for 8 GPUs) and 64 GiB of memory per GPU per
// node. Run times are log-uniform from
// 2 minutes to 24 hours; the estimate (walltime) is the run time times
// 1..3 rounded up to a quarter hour, and one job in ten runs into its
// walltime. Arrivals are a Poisson stream scaled so that the offered GPU
// load over the arrival span is o.Load.
func GenerateGPUWorkload(o GPUWorkloadOptions) ([]placement.Node, []Job) {
	o = o.withDefaults()
	nodes := GPUCluster(o)
	totalGPUs := 0
	for _, n := range nodes {
		totalGPUs += len(n.GPUs)
	}
	// PCG with the seed and a fixed stream: math/rand/v2, reproducible
	// across Go releases (unlike the package-level functions).
	r := rand.New(rand.NewPCG(o.Seed, 0x6770756c6f6164))    // "gpuload"
	r2 := rand.New(rand.NewPCG(o.Seed, 0x73686172656d6f64)) // "sharemod"
	jobs := make([]Job, o.Jobs)
	var gpuSeconds float64
	for i := range jobs {
		j := placement.Job{ID: uint64(i + 1), Priority: 100, Nodes: 1}
		x := r.Float64()
		gpus := 0
		switch {
		case x < 0.35 || totalGPUs == 0:
			cpus := []int{4, 8, 16, 32, 64}[r.IntN(5)]
			j.PerNode = placement.Request{CPUs: cpus, Memory: int64(cpus) * 4 * gib}
			if r.IntN(6) == 0 {
				j.Nodes = 2 + r.IntN(3)
			}
		case x < 0.60:
			gpus = 1
			if r.IntN(10) == 0 {
				j.PerNode.GPU.MinMemory = 48 * gib
			}
		case x < 0.75:
			gpus = 2
			j.PerNode.GPU.NVLink = r.IntN(2) == 0
		case x < 0.87:
			gpus = 4
			j.PerNode.GPU.NVLink = r.IntN(3) == 0
		case x < 0.95:
			gpus = 8
		default:
			if r.IntN(2) == 0 {
				gpus, j.Nodes = 8, 2+r.IntN(3)
			} else {
				gpus, j.Nodes = 4, 2
			}
		}
		if gpus > 0 {
			j.PerNode.GPU.Count = gpus
			j.PerNode.CPUs = 8 * gpus
			if gpus == 8 {
				j.PerNode.CPUs = 48 // fits the 64-CPU L40S nodes too
			}
			j.PerNode.Memory = int64(gpus) * 64 * gib
			if gpus == 1 && j.Nodes == 1 && r2.Float64() < o.ShareJobs {
				j.PerNode.GPU.Share = []float64{0.25, 0.5}[r2.IntN(2)]
				j.PerNode.CPUs, j.PerNode.Memory = 2, 16*gib
			}
			if r2.Float64() < o.ModelJobs {
				j.PerNode.GPU.Model = []string{"H100|A100", "L40S"}[r2.IntN(2)]
				if j.PerNode.GPU.NVLink || gpus*j.Nodes > 8 && j.Nodes > 4 {
					j.PerNode.GPU.Model = "H100|A100" // L40S nodes have no NVLink
				}
			}
		}
		run := time.Duration(math.Exp(math.Log(120)+r.Float64()*math.Log(86400.0/120))) * time.Second
		est := time.Duration(float64(run) * (1 + 2*r.Float64())).Round(time.Second)
		est = (est + 15*time.Minute - 1).Truncate(15 * time.Minute)
		if r.IntN(10) == 0 {
			run = est
		}
		j.Walltime = est
		jobs[i] = Job{Job: j, Run: max(run, time.Second)}
		gpuSeconds += float64(gpus*j.Nodes) * jobs[i].Run.Seconds() * float64(gpuUse(j.PerNode.GPU.Share)) / 100
	}
	// Exponential gaps, then scaled so the span carries the wanted load.
	gaps := make([]float64, len(jobs))
	var sum float64
	for i := range gaps {
		gaps[i] = r.ExpFloat64()
		sum += gaps[i]
	}
	span := gpuSeconds / (float64(max(totalGPUs, 1)) * o.Load)
	t := 0.0
	for i := range jobs {
		jobs[i].Submit = Epoch.Add(time.Duration(t * float64(time.Second)).Round(time.Second))
		t += gaps[i] / sum * span
	}
	return nodes, jobs
}

// GPUResult summarizes a GPU workload replay.
type GPUResult struct {
	Jobs               int     `json:"jobs"`
	AvgWait            float64 `json:"avg_wait_s"`
	MaxWait            float64 `json:"max_wait_s"`
	AvgResponse        float64 `json:"avg_response_s"`
	Throughput         float64 `json:"throughput_per_h"`
	AvgBoundedSlowdown float64 `json:"avg_bounded_slowdown"`
	// GPUUtilization is GPU-seconds used over GPUs · makespan.
	GPUUtilization float64 `json:"gpu_utilization"`
	// Utilization is the same for CPUs, over every node's CPUs.
	Utilization float64 `json:"utilization"`
	Makespan    float64 `json:"makespan_s"`
	// MultiGPUJobs counts jobs with 2 or more GPUs per node; BestLinkShare
	// is the share of them whose GPU set on every node is as well
	// connected as the best set of that size on an empty node of that type
	// (weakest pairwise link first, then the sum of the pairwise links).
	MultiGPUJobs  int     `json:"multi_gpu_jobs"`
	BestLinkShare float64 `json:"best_link_share"`
	// CPUJobsOnGPUNodes is the share of CPU-only jobs that ran on at least
	// one node with GPUs (where they take CPUs and memory GPU jobs need).
	CPUJobsOnGPUNodes float64 `json:"cpu_jobs_on_gpu_nodes"`
	// AvgWaitByGPUs is the average wait of the jobs asking for that many
	// GPUs per node ("0" for CPU-only jobs), to see who pays for a policy.
	AvgWaitByGPUs map[string]float64 `json:"avg_wait_by_gpus_s"`
	// FragMean is the time-weighted mean over the makespan of the GPUs
	// no request shape of the workload could use where they were free
	// (frag.go), FragShare the same as a share of the free GPUs, and
	// FragCurve its course in 20 equal spans of the makespan.
	FragMean  float64     `json:"frag_mean_gpus"`
	FragShare float64     `json:"frag_mean_share"`
	FragCurve []FragPoint `json:"frag_curve"`
	Wall      float64     `json:"wall_s"`
}

// SimulateGPUWorkload generates the workload of o and replays it under
// pol; plan nil means placement.Plan on a kept placement.State (Replay).
func SimulateGPUWorkload(o GPUWorkloadOptions, pol placement.Policy, plan Planner) (GPUResult, error) {
	nodes, jobs := GenerateGPUWorkload(o)
	out, err := Replay(nodes, jobs, pol, plan)
	if err != nil {
		return GPUResult{}, err
	}
	return out.SummarizeGPU(), nil
}

// SummarizeGPU computes the GPU figures of a replay.
func (o *Outcome) SummarizeGPU() GPUResult {
	base := o.Summarize(0)
	r := GPUResult{
		Jobs: base.Jobs, AvgWait: base.AvgWait, MaxWait: base.MaxWait,
		AvgBoundedSlowdown: base.AvgBoundedSlowdown, Utilization: base.Utilization,
		AvgResponse: base.AvgResponse, Throughput: base.Throughput,
		Makespan: base.Makespan, Wall: base.Wall,
	}
	byName := make(map[string]*placement.Node, len(o.Nodes))
	totalGPUs := 0
	for i := range o.Nodes {
		byName[o.Nodes[i].Name] = &o.Nodes[i]
		totalGPUs += len(o.Nodes[i].GPUs)
	}
	var gpuSec float64
	cpuJobs, cpuOnGPU := 0, 0
	waitSum, waitN := map[int]float64{}, map[int]int{}
	type nodeK struct {
		node string
		k    int
	}
	best := map[nodeK]linkQuality{} // best set of k GPUs on the empty node
	onBest := 0
	for i, j := range o.Jobs {
		n := j.PerNode.GPU.Count
		gpuSec += j.Run.Seconds() * float64(n*max(j.Nodes, 1)) * float64(gpuUse(j.PerNode.GPU.Share)) / 100
		waitSum[n] += o.Placed[i].Start.Sub(j.Submit).Seconds()
		waitN[n]++
		if n == 0 {
			cpuJobs++
			for _, a := range o.Placed[i].Nodes {
				if len(byName[a.Node].GPUs) > 0 {
					cpuOnGPU++
					break
				}
			}
		}
		if n < 2 {
			continue
		}
		r.MultiGPUJobs++
		ok := true
		for _, a := range o.Placed[i].Nodes {
			nd := byName[a.Node]
			key := nodeK{a.Node, n}
			b, seen := best[key]
			if !seen {
				b = bestOnEmpty(nd, n)
				best[key] = b
			}
			if setQualityOf(nd, a.GPUs) != b {
				ok = false
			}
		}
		if ok {
			onBest++
		}
	}
	if totalGPUs > 0 && r.Makespan > 0 {
		r.GPUUtilization = gpuSec / (float64(totalGPUs) * r.Makespan)
	}
	if r.MultiGPUJobs > 0 {
		r.BestLinkShare = float64(onBest) / float64(r.MultiGPUJobs)
	}
	if cpuJobs > 0 {
		r.CPUJobsOnGPUNodes = float64(cpuOnGPU) / float64(cpuJobs)
	}
	if len(o.Jobs) > 0 {
		t0 := since(o.Jobs[0].Submit)
		for _, j := range o.Jobs {
			t0 = min(t0, since(j.Submit))
		}
		r.FragMean, r.FragShare = fragMean(o.Frag, t0, t0+r.Makespan)
		r.FragCurve = fragCurve(o.Frag, t0, t0+r.Makespan, 20)
	}
	r.AvgWaitByGPUs = make(map[string]float64, len(waitN))
	for n, c := range waitN {
		r.AvgWaitByGPUs[strconv.Itoa(n)] = waitSum[n] / float64(c)
	}
	return r
}

// linkQuality ranks a GPU set: its weakest pairwise link, then the sum of
// its pairwise links.
type linkQuality struct {
	min resources.Link
	sum int
}

func linkAt(n *placement.Node, i, j int) resources.Link {
	if n.Links == nil {
		return resources.LinkSystem
	}
	return n.Links[i][j]
}

// qualityOfPositions scores a set of GPU positions (indexes into n.GPUs).
func qualityOfPositions(n *placement.Node, pos []int) linkQuality {
	q := linkQuality{min: resources.LinkNVLink}
	for a := range pos {
		for b := a + 1; b < len(pos); b++ {
			l := linkAt(n, pos[a], pos[b])
			q.min = min(q.min, l)
			q.sum += int(l)
		}
	}
	return q
}

func setQualityOf(n *placement.Node, ids []int) linkQuality {
	pos := make([]int, 0, len(ids))
	for _, id := range ids {
		for p, g := range n.GPUs {
			if g.ID == id {
				pos = append(pos, p)
			}
		}
	}
	return qualityOfPositions(n, pos)
}

// bestOnEmpty is the best quality of any k GPUs of n, by brute force over
// all subsets (nodes have at most a few dozen GPUs; k-subsets of 8 are 70).
func bestOnEmpty(n *placement.Node, k int) linkQuality {
	g := len(n.GPUs)
	var best linkQuality
	found := false
	pos := make([]int, 0, k)
	for m := uint64(0); m < 1<<g; m++ {
		if bits.OnesCount64(m) != k {
			continue
		}
		pos = pos[:0]
		for w := m; w != 0; w &= w - 1 {
			pos = append(pos, bits.TrailingZeros64(w))
		}
		q := qualityOfPositions(n, pos)
		if !found || q.min > best.min || (q.min == best.min && q.sum > best.sum) {
			best, found = q, true
		}
	}
	return best
}
