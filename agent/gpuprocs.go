package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// procTable tells which job a process belongs to, from /proc (root is
// its mount point, a parameter for tests): NVML names processes by pid
// only, and a shared GPU runs processes of several jobs.
type procTable struct{ root string }

// maxAncestry bounds the walk up a process's parents.
const maxAncestry = 64

// procOwners recognises the processes of the jobs sharing GPUs during
// one sample: by the job's own cgroup when it has one (which also holds
// processes that left the job's process tree), else by descent from the
// job's main process. Answers are cached for the sample.
type procOwners struct {
	t        procTable
	byRoot   map[int]uint64
	byCgroup map[string]uint64
	seen     map[int]ownerAnswer
}

type ownerAnswer struct {
	id uint64
	ok bool
}

// owners prepares the recognition of the processes of the jobs in ids
// (every job listed under any GPU of shared).
func (t procTable) owners(jobs map[uint64]*gpuJob, shared map[int][]uint64) *procOwners {
	o := &procOwners{t: t, byRoot: map[int]uint64{}, byCgroup: map[string]uint64{}, seen: map[int]ownerAnswer{}}
	self := t.cgroup("self")
	for _, ids := range shared {
		for _, id := range ids {
			pid := jobs[id].pid()
			if pid <= 0 {
				continue
			}
			o.byRoot[pid] = id
			// A job in the agent's own cgroup (no cgroups: the tree
			// fallback) has none of its own to go by.
			if cg := t.cgroup(strconv.Itoa(pid)); cg != "" && cg != self {
				o.byCgroup[cg] = id
			}
		}
	}
	return o
}

// of returns the job process pid belongs to.
func (o *procOwners) of(pid int) (uint64, bool) {
	if a, ok := o.seen[pid]; ok {
		return a.id, a.ok
	}
	if pid <= 0 {
		return 0, false
	}
	if len(o.byCgroup) > 0 {
		if id, ok := o.byCgroup[o.t.cgroup(strconv.Itoa(pid))]; ok {
			o.seen[pid] = ownerAnswer{id, true}
			return id, true
		}
	}
	a := o.byDescent(pid)
	return a.id, a.ok
}

// byDescent walks up from pid to a job's main process, and remembers the
// answer for every process on the way: their siblings on the GPU share
// most of the walk.
func (o *procOwners) byDescent(pid int) ownerAnswer {
	var path []int
	var a ownerAnswer
	for p := pid; p > 1 && len(path) < maxAncestry; p = o.t.ppid(p) {
		if id, ok := o.byRoot[p]; ok {
			a = ownerAnswer{id, true}
			break
		}
		if known, ok := o.seen[p]; ok && p != pid {
			a = known // every answer kept holds for descent too
			break
		}
		path = append(path, p)
	}
	for i, p := range path {
		// An ancestor's own cgroup was not looked at: only a positive
		// answer (or none to look at) is sure for it.
		if a.ok || i == 0 || len(o.byCgroup) == 0 {
			o.seen[p] = a
		}
	}
	return a
}

// cgroup is the content of /proc/<pid>/cgroup ("" when unreadable): equal
// for processes in the same cgroups, under v1 and v2 alike.
func (t procTable) cgroup(pid string) string {
	b, err := os.ReadFile(filepath.Join(t.root, pid, "cgroup"))
	if err != nil {
		return ""
	}
	return string(b)
}

// ppid is the parent of pid (0 when unknown), from /proc/<pid>/stat; the
// command name may hold spaces and parentheses, so fields count from
// the last ')'.
func (t procTable) ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join(t.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // state, ppid, ...
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(string(f[1]))
	return p
}
