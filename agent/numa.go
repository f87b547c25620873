package agent

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/api"
)

// NUMANodes reads the machine's NUMA nodes and their CPUs from sysfs
// (sysRoot is "/sys" outside tests), keeping only the CPUs in usable.
// A machine without the NUMA directory (or with one node) still gets an
// answer: nil when nothing is readable.
func NUMANodes(sysRoot string, usable []int) []api.NUMANode {
	ok := map[int]bool{}
	for _, c := range usable {
		ok[c] = true
	}
	dirs, _ := filepath.Glob(filepath.Join(sysRoot, "devices/system/node/node[0-9]*"))
	var out []api.NUMANode
	for _, d := range dirs {
		id, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "node"))
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d, "cpulist"))
		if err != nil {
			continue
		}
		n := api.NUMANode{ID: id, CPUs: []int{}}
		for _, c := range parseCPUList(strings.TrimSpace(string(data))) {
			if ok[c] {
				n.CPUs = append(n.CPUs, c)
			}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

// parseCPUList reads the kernel's list format: "0-3,8,10-11".
func parseCPUList(s string) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil || hi < lo || hi-lo > 1<<16 {
				continue
			}
		}
		for c := lo; c <= hi; c++ {
			out = append(out, c)
		}
	}
	return out
}
