package placement

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Synthetic clusters and queues for benchmarks and property tests. The
// random source is seeded by the caller, so every run sees the same data.

// synthCluster builds n nodes: 8 in 10 CPU-only, the rest split between
// 8-GPU H100 NVSwitch nodes and 4-GPU A100 nodes with NVLink pairs. About
// busy of the nodes run something, ending within a day.
func synthCluster(r *rand.Rand, n int, busy float64, now time.Time) ([]Node, []Running) {
	nodes := make([]Node, 0, n)
	for i := range n {
		var nd Node
		switch {
		case i%10 < 8:
			nd = Node{Name: fmt.Sprintf("cpu%05d", i), CPUs: 64, Memory: 256 * gib}
			if i%3 == 0 {
				nd.Features = []string{"ib"}
			}
		case i%20 == 8:
			nd = Node{Name: fmt.Sprintf("h100-%05d", i), CPUs: 112, Memory: 2048 * gib, Features: []string{"ib"}, Links: nvswitch(8)}
			for g := range 8 {
				nd.GPUs = append(nd.GPUs, GPU{ID: g, Model: "NVIDIA H100 80GB HBM3", Memory: 80 * gib})
			}
		default:
			nd = Node{Name: fmt.Sprintf("a100-%05d", i), CPUs: 64, Memory: 512 * gib, Links: nvpairs(4)}
			for g := range 4 {
				nd.GPUs = append(nd.GPUs, GPU{ID: g, Model: "NVIDIA A100-SXM4-40GB", Memory: 40 * gib})
			}
		}
		nodes = append(nodes, nd)
	}
	var run []Running
	id := uint64(1 << 40)
	for i := range nodes {
		nd := &nodes[i]
		if r.Float64() >= busy {
			continue
		}
		// One to three jobs, each taking a slice of the node.
		cpu, gpu := 0, 0
		var mem int64
		for range 1 + r.IntN(3) {
			c := 1 + r.IntN(nd.CPUs/2)
			m := int64(1+r.IntN(8)) * 8 * gib
			g := 0
			if len(nd.GPUs) > 0 {
				g = r.IntN(len(nd.GPUs)/2 + 1)
			}
			if cpu+c > nd.CPUs || mem+m > nd.Memory || gpu+g > len(nd.GPUs) {
				break
			}
			a := NodeAlloc{Node: nd.Name, Memory: m}
			for k := range c {
				a.CPUs = append(a.CPUs, cpu+k)
			}
			for k := range g {
				a.GPUs = append(a.GPUs, gpu+k)
			}
			cpu, gpu, mem = cpu+c, gpu+g, mem+m
			end := now.Add(time.Duration(1+r.IntN(24*60)) * time.Minute)
			run = append(run, Running{JobID: id, End: end, Nodes: []NodeAlloc{a}})
			id++
		}
	}
	return nodes, run
}

// synthQueue builds m pending jobs: mostly small CPU jobs, GPU jobs of
// 1/2/4/8 GPUs of either model or any, multi-node CPU and GPU gangs, some
// asking for NVLink sets; walltimes from minutes to a day.
func synthQueue(r *rand.Rand, m int, now time.Time) []Job {
	jobs := make([]Job, m)
	mems := []int64{2 * gib, 4 * gib, 8 * gib, 16 * gib, 32 * gib, 64 * gib}
	for i := range jobs {
		j := Job{
			ID:       uint64(i + 1),
			Priority: 100,
			Submit:   now.Add(-time.Duration(r.IntN(48*3600)) * time.Second),
			Nodes:    1,
			Walltime: time.Duration(10+r.IntN(24*60)) * time.Minute,
		}
		if r.IntN(10) == 0 {
			j.Priority = 100 + 100*r.IntN(5)
		}
		switch x := r.IntN(100); {
		case x < 60: // small CPU job
			j.PerNode = Request{CPUs: 1 << r.IntN(5), Memory: mems[r.IntN(len(mems))]}
			if r.IntN(5) == 0 {
				j.Features = []string{"ib"}
			}
		case x < 70: // CPU gang
			j.Nodes = 2 + r.IntN(15)
			j.PerNode = Request{CPUs: 32 + 32*r.IntN(2), Memory: 64 * gib}
			j.Features = []string{"ib"}
		case x < 90: // GPU job
			g := 1 << r.IntN(4)
			model := []string{"H100", "A100", ""}[r.IntN(3)]
			if g == 8 {
				model = "H100"
			}
			j.PerNode = Request{CPUs: 4 * g, Memory: int64(g) * 32 * gib, GPU: GPURequest{Count: g, Model: model}}
			if g > 1 && r.IntN(4) == 0 {
				j.PerNode.GPU.NVLink = true
			}
		default: // GPU gang
			j.Nodes = 2 + r.IntN(3)
			j.PerNode = Request{CPUs: 64, Memory: 512 * gib, GPU: GPURequest{Count: 8, Model: "H100", NVLink: true}}
			j.Features = []string{"ib"}
		}
		jobs[i] = j
	}
	return jobs
}
