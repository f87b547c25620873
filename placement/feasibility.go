package placement

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/resources"
)

// Rejection is why a job can never run on a cluster: returned by Feasible
// at submit, as Slurm refuses a job no partition could ever hold.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

// Feasible reports whether job could run on this cluster if it were empty,
// counting every node that is not Down (a draining node comes back). It
// returns nil or a *Rejection.
func Feasible(nodes []Node, job Job) error {
	c := newCluster(Snapshot{Nodes: nodes}, time.Time{}, newProfile(Policy{}))
	k := c.kindOf(&job)
	if r, d := c.staticCheck(&job, k, false); r != "" {
		return &Rejection{Reason: r, Detail: d}
	}
	return nil
}

// kind is what a job needs of a node's static shape: its features and its
// GPU model, memory and link requirement. Jobs of one kind share it, so
// the per-class work is done once per Plan call.
type kind struct {
	classOK []bool   // per class: features present and, for GPU jobs, some matching GPU
	compat  []uint64 // per class: GPU positions of the requested model and memory
	anyFeat bool     // some class has every feature
	fails   []failure
	blocked []failure // blocked.go
}

// failure remembers a request of this kind that could not start in this
// pass. Free resources only shrink during a pass and reservations only
// add up, so any request at least as large (and no shorter, when
// reservations were in the way) fails too, without a search. This is
// what keeps a pass over a long queue cheap once the cluster is full.
type failure struct {
	cpus, gpus, nodes int
	mem               int64
	wall              int64 // 0: fails whatever the walltime
	nvlink            bool
	share             int16 // sharing request: compared among sharing ones only
	reason            Reason
}

const maxFailures = 32

// failed looks j up among the remembered failures.
func (k *kind) failed(j *Job, wall int64) (Reason, bool) {
	return lookupFailure(k.fails, j, wall)
}

// remember records that j failed; entries the new one covers are dropped.
//
// Only Resources is remembered: a larger request fails wherever a smaller
// one did, but one held back by a reservation (or by NVLink) may, after a
// start in the same pass or for its larger size, lack the free resources
// too, and its reason must say so.
func (k *kind) remember(j *Job, wall int64, reason Reason) {
	if reason != ReasonResources {
		return
	}
	r := &j.PerNode
	k.fails = addFailure(k.fails, failure{cpus: r.CPUs, gpus: r.GPU.Count, nodes: gangSize(j), mem: r.Memory, wall: wall, nvlink: r.GPU.NVLink, share: shareOf(r), reason: reason})
}

// lookupFailure returns the reason of the first failure in fs that covers
// j: one no larger in any respect, so j fails too.
func lookupFailure(fs []failure, j *Job, wall int64) (Reason, bool) {
	r := &j.PerNode
	sh := shareOf(r)
	for _, f := range fs {
		if r.CPUs >= f.cpus && r.Memory >= f.mem && r.GPU.Count >= f.gpus && gangSize(j) >= f.nodes &&
			(r.GPU.NVLink || !f.nvlink) && wall >= f.wall && (sh == 0) == (f.share == 0) && sh >= f.share {
			return f.reason, true
		}
	}
	return "", false
}

// addFailure adds f to fs, dropping the entries f covers, while fewer
// than maxFailures remain.
func addFailure(fs []failure, f failure) []failure {
	fs = slices.DeleteFunc(fs, func(o failure) bool {
		return o.cpus >= f.cpus && o.mem >= f.mem && o.gpus >= f.gpus && o.nodes >= f.nodes &&
			(o.nvlink || !f.nvlink) && o.wall >= f.wall && (o.share == 0) == (f.share == 0) && o.share >= f.share
	})
	if len(fs) < maxFailures {
		fs = append(fs, f)
	}
	return fs
}

// kindOf returns the (cached) kind of a job.
func (c *cluster) kindOf(j *Job) *kind {
	var fs [8]string
	feats := append(fs[:0], j.Features...)
	slices.Sort(feats)
	feats = slices.Compact(feats)
	b := c.keyBuf[:0]
	for _, f := range feats {
		b = append(b, f...)
		b = append(b, 0)
	}
	b = append(b, 1)
	wantGPU := j.PerNode.GPU.Count > 0
	if wantGPU {
		b = append(b, strings.ToLower(j.PerNode.GPU.Model)...)
		b = append(b, 0)
		b = appendInt(b, j.PerNode.GPU.MinMemory)
	}
	c.keyBuf = b
	if k, ok := c.kinds[string(b)]; ok {
		return k
	}
	k := &kind{classOK: make([]bool, len(c.classes)), compat: make([]uint64, len(c.classes))}
	models := strings.Split(strings.ToLower(j.PerNode.GPU.Model), "|")
	for ci := range c.classes {
		cl := &c.classes[ci]
		if !hasAll(cl.features, feats) {
			continue
		}
		k.anyFeat = true
		var m uint64
		if wantGPU {
			for p, g := range cl.gpus {
				if g.Memory >= j.PerNode.GPU.MinMemory && modelMatches(g.Model, models) {
					m |= 1 << p
				}
			}
		}
		k.compat[ci] = m
		k.classOK[ci] = !wantGPU || m != 0
	}
	if c.kinds == nil {
		c.kinds = map[string]*kind{}
	}
	c.kinds[string(b)] = k
	return k
}

// modelMatches reports whether a GPU model name contains one of the
// lower-case alternatives of a request ("v100|a100"); blanks around an
// alternative do not count, and an empty request matches every model.
func modelMatches(model string, alts []string) bool {
	m := strings.ToLower(model)
	for _, a := range alts {
		if strings.Contains(m, strings.TrimSpace(a)) {
			return true
		}
	}
	return false
}

// hasAll reports whether sorted have contains every element of sorted want.
func hasAll(have, want []string) bool {
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] < w {
			i++
		}
		if i == len(have) || have[i] != w {
			return false
		}
	}
	return true
}

// classFits reports whether an empty node of class ci could hold one node's
// share of j; the reason says what is missing when it cannot.
func (c *cluster) classFits(ci int32, j *Job, k *kind) (Reason, bool) {
	cl := &c.classes[ci]
	if !k.classOK[ci] {
		if k.anyFeat && hasAllUnsorted(cl.features, j.Features) {
			return ReasonGPUModel, false
		}
		return ReasonNoNodeWithFeature, false
	}
	r := &j.PerNode
	if r.CPUs > cl.ncpu || r.Memory > cl.mem || r.GPU.Count > bits.OnesCount64(k.compat[ci]) {
		return ReasonTooLarge, false
	}
	if r.GPU.Count > 0 && !c.gpuSet(ci, cl.allGPUs, k.compat[ci], r.GPU.Count, r.GPU.NVLink).ok {
		return ReasonGPUTopology, false
	}
	return "", true
}

func hasAllUnsorted(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// staticCheck says why j could never start even on an empty cluster: over
// Up nodes (upOnly, as Plan sees it) or over all nodes not Down (Feasible).
// It returns "" when some set of nodes could hold the whole gang.
func (c *cluster) staticCheck(j *Job, k *kind, upOnly bool) (Reason, string) {
	best := Reason("")
	usable := 0
	for ci := range c.classes {
		cnt := c.classes[ci].live
		if upOnly {
			cnt = c.classes[ci].up
		}
		if cnt == 0 {
			continue
		}
		r, ok := c.classFits(int32(ci), j, k)
		if ok {
			usable += cnt
			continue
		}
		if staticRank(r) > staticRank(best) {
			best = r
		}
	}
	if usable >= gangSize(j) {
		return "", ""
	}
	if usable > 0 {
		return ReasonNodes, fmt.Sprintf("needs %d nodes at once, %d can hold it", gangSize(j), usable)
	}
	if best == "" {
		return ReasonNodes, "no usable node"
	}
	return best, describe(best, j)
}

// describe is the one line a user reads for a static reason.
func describe(r Reason, j *Job) string {
	g := j.PerNode.GPU
	gpus := fmt.Sprintf("%d GPU(s)", g.Count)
	if g.Model != "" {
		gpus += fmt.Sprintf(" matching %q", g.Model)
	}
	if g.MinMemory > 0 {
		gpus += " with at least " + resources.FormatBytes(g.MinMemory)
	}
	switch r {
	case ReasonNoNodeWithFeature:
		return fmt.Sprintf("no node has all features %v", j.Features)
	case ReasonGPUModel:
		return "no node with the features has " + gpus
	case ReasonTooLarge:
		return fmt.Sprintf("no node can hold %d CPUs, %s memory and %s", j.PerNode.CPUs, resources.FormatBytes(j.PerNode.Memory), gpus)
	case ReasonGPUTopology:
		return "no node has " + gpus + " all NVLink-connected"
	}
	return string(r)
}

// staticRank orders static reasons by how close the job came: the most
// specific one is reported (a node had the features and the model, but
// was too small).
func staticRank(r Reason) int {
	switch r {
	case ReasonNoNodeWithFeature:
		return 1
	case ReasonGPUModel:
		return 2
	case ReasonTooLarge:
		return 3
	case ReasonGPUTopology:
		return 4
	}
	return 0
}
