package exec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Root is where this platform mounts the v1 hierarchies.
const v1Root = "/sys/fs/cgroup"

// v1Driver places each job in <parent>/job-<id> of every v1 hierarchy.
type v1Driver struct{ parent string }

func (d *v1Driver) path(jobID uint64) string {
	return path.Join("/", d.parent, "job-"+strconv.FormatUint(jobID, 10))
}

func (d *v1Driver) create(jobID uint64, res *specs.LinuxResources) (jobGroup, error) {
	if res.Memory != nil && res.Memory.Swap != nil {
		// Without swap accounting (swapaccount=0) memsw files are absent and
		// writing them fails; the memory limit alone still holds.
		if _, err := os.Stat(v1Root + "/memory/memory.memsw.limit_in_bytes"); err != nil {
			m := *res.Memory
			m.Swap = nil
			r := *res
			r.Memory = &m
			res = &r
		}
	}
	p := d.path(jobID)
	cg, err := cgroup1.New(cgroup1.StaticPath(p), res)
	if err != nil {
		// New may have created some hierarchies before failing.
		if old, lerr := cgroup1.Load(cgroup1.StaticPath(p)); lerr == nil {
			_ = old.Delete()
		}
		return nil, fmt.Errorf("create cgroup v1 %s: %w", p, err)
	}
	return &v1Group{cg: cg, path: p, parent: d.parent}, nil
}

func (d *v1Driver) load(jobID uint64) (jobGroup, error) {
	p := d.path(jobID)
	cg, err := cgroup1.Load(cgroup1.StaticPath(p))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("load cgroup v1 %s: %w", p, errNoCgroup)
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup v1 %s: %w", p, err)
	}
	return &v1Group{cg: cg, path: p, parent: d.parent}, nil
}

type v1Group struct {
	cg     cgroup1.Cgroup
	path   string
	parent string
}

func (g *v1Group) enterShim(pid int) error {
	if err := g.cg.Add(cgroup1.Process{Pid: pid}); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, g.path, err)
	}
	return nil
}

func (g *v1Group) leave() error {
	parent, err := cgroup1.Load(cgroup1.StaticPath(path.Join("/", g.parent)))
	if err != nil {
		return fmt.Errorf("load parent cgroup %s: %w", g.parent, err)
	}
	if err := parent.Add(cgroup1.Process{Pid: os.Getpid()}); err != nil {
		return fmt.Errorf("move shim to parent cgroup %s: %w", g.parent, err)
	}
	return nil
}

func (g *v1Group) prepareChild(*syscall.SysProcAttr) (func(), error) { return func() {}, nil }

func (g *v1Group) pids() ([]int, error) {
	procs, err := g.cg.Processes(cgroup1.Freezer, true)
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %w", g.path, err)
	}
	out := make([]int, 0, len(procs))
	for _, p := range procs {
		if !slices.Contains(out, p.Pid) {
			out = append(out, p.Pid)
		}
	}
	return out, nil
}

// killAll freezes the group so nothing can fork while the list is read,
// SIGKILLs every member and thaws it so the kills are delivered. A frozen
// shim could never thaw, so the freeze is skipped while the shim is inside.
func (g *v1Group) killAll(shimPID int) error {
	for round := 0; round < 100; round++ {
		pids, err := g.pids()
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil // emptied and removed by the shim meanwhile
		}
		if err != nil {
			return err
		}
		others := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return p == shimPID })
		if len(others) == 0 {
			return nil
		}
		freeze := !slices.Contains(pids, shimPID)
		if freeze {
			if err := g.cg.Freeze(); err != nil {
				if g.gone() {
					return nil
				}
				return fmt.Errorf("freeze %s: %w", g.path, err)
			}
			if pids, err = g.pids(); err != nil {
				_ = g.cg.Thaw()
				return err
			}
		}
		for _, p := range pids {
			if p != shimPID {
				_ = unix.Kill(p, unix.SIGKILL)
			}
		}
		if freeze {
			if err := g.cg.Thaw(); err != nil {
				return fmt.Errorf("thaw %s: %w", g.path, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s still has processes after repeated SIGKILL", g.path)
}

// gone reports whether the cgroup was removed (by the shim, racing us).
func (g *v1Group) gone() bool {
	_, err := os.Stat(filepath.Join(v1Root, "freezer", g.path))
	return errors.Is(err, os.ErrNotExist)
}

func (g *v1Group) oomKills() (uint64, error) {
	m, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", g.path, err)
	}
	// memory.oom_control's oom_kill counter; memory.failcnt stays 0 on this
	// kernel even after an OOM kill, so it is never used.
	if m.MemoryOomControl == nil {
		return 0, nil
	}
	return m.MemoryOomControl.OomKill, nil
}

func (g *v1Group) usage() (time.Duration, int64, bool, error) {
	m, err := g.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return 0, 0, false, fmt.Errorf("stat %s: %w", g.path, err)
	}
	var cpu time.Duration
	var peak int64
	if m.CPU != nil && m.CPU.Usage != nil {
		cpu = time.Duration(m.CPU.Usage.Total) // cpuacct.usage, ns
	}
	if m.Memory != nil && m.Memory.Usage != nil {
		peak = int64(m.Memory.Usage.Max) // memory.max_usage_in_bytes
	}
	return cpu, peak, true, nil
}

func (g *v1Group) remove() error {
	if err := g.cg.Delete(); err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("delete cgroup %s: %w", g.path, err)
	}
	return nil
}
