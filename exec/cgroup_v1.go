package exec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Root is where this platform mounts the v1 hierarchies.
const v1Root = "/sys/fs/cgroup"

// jobSubsystems are the v1 controllers a job's limits and bookkeeping use;
// creating and removing the others (blkio, systemd, ...) for every job only
// cost time.
var jobSubsystems = map[cgroup1.Name]bool{
	cgroup1.Cpu: true, cgroup1.Cpuacct: true, cgroup1.Cpuset: true, cgroup1.Memory: true,
	cgroup1.Devices: true, cgroup1.Freezer: true, cgroup1.Pids: true,
}

var (
	hierarchyOnce sync.Once
	hierarchySubs []cgroup1.Subsystem
	hierarchyErr  error
)

// jobHierarchy lists the mounted job subsystems once per process: the
// default hierarchy re-reads /proc/self/mountinfo on every call.
func jobHierarchy() ([]cgroup1.Subsystem, error) {
	hierarchyOnce.Do(func() {
		all, err := cgroup1.Default()
		if err != nil {
			hierarchyErr = err
			return
		}
		for _, s := range all {
			if jobSubsystems[s.Name()] {
				hierarchySubs = append(hierarchySubs, s)
			}
		}
	})
	return hierarchySubs, hierarchyErr
}

var withJobHierarchy = cgroup1.WithHierarchy(jobHierarchy)

// v1Driver places each job in <parent>/job-<id> of every v1 hierarchy.
type v1Driver struct{ parent string }

func (d *v1Driver) path(jobID uint64) string {
	return path.Join("/", d.parent, "job-"+strconv.FormatUint(jobID, 10))
}

func (d *v1Driver) create(jobID uint64, res *specs.LinuxResources) (jobGroup, error) {
	return d.createAt(d.path(jobID), res)
}

// createAt makes the cgroup p (a job's, or a spawner's slot) with res.
func (d *v1Driver) createAt(p string, res *specs.LinuxResources) (jobGroup, error) {
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
	cg, err := cgroup1.New(cgroup1.StaticPath(p), res, withJobHierarchy)
	if err != nil {
		// New may have created some hierarchies before failing.
		if old, lerr := cgroup1.Load(cgroup1.StaticPath(p), withJobHierarchy); lerr == nil {
			_ = old.Delete()
		}
		return nil, fmt.Errorf("create cgroup v1 %s: %w", p, err)
	}
	return &v1Group{cg: cg, path: p, parent: d.parent}, nil
}

func (d *v1Driver) removeParent() {
	subs, err := jobHierarchy()
	if err != nil {
		return
	}
	for _, sub := range subs {
		if p, ok := sub.(interface{ Path(string) string }); ok {
			_ = unix.Rmdir(p.Path(path.Join("/", d.parent)))
		}
	}
}

func (d *v1Driver) load(jobID uint64) (jobGroup, error) {
	p := d.path(jobID)
	cg, err := cgroup1.Load(cgroup1.StaticPath(p), withJobHierarchy)
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
	parent, err := cgroup1.Load(cgroup1.StaticPath(path.Join("/", g.parent)), withJobHierarchy)
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
				if g.gone() {
					return nil
				}
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
				if g.gone() {
					return nil // all killed, and the shim removed the group meanwhile
				}
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

// oomKills reads memory.oom_control's oom_kill counter directly: a full
// cg.Stat reads every controller's statistics (blkio's are slow) and cost
// tens of milliseconds per job. memory.failcnt stays 0 on this kernel even
// after an OOM kill, so it is never used.
func (g *v1Group) oomKills() (uint64, error) {
	v, err := readKey(filepath.Join(v1Root, "memory", g.path, "memory.oom_control"), "oom_kill")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

// usage reads cpuacct.usage (ns) and memory.max_usage_in_bytes directly,
// for the same reason.
func (g *v1Group) usage() (time.Duration, int64, bool, error) {
	cpu, err := readInt(filepath.Join(v1Root, "cpuacct", g.path, "cpuacct.usage"))
	if err != nil {
		return 0, 0, false, err
	}
	peak, err := readInt(filepath.Join(v1Root, "memory", g.path, "memory.max_usage_in_bytes"))
	if err != nil {
		return 0, 0, false, err
	}
	return time.Duration(cpu), peak, true, nil
}

func readInt(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", file, err)
	}
	return v, nil
}

// remove deletes the job's (empty) cgroup with one rmdir per controller.
// cg.Delete first walks every file of every controller's directory looking
// for processes, which was a tenth of the daemon's CPU time with many short
// jobs; it remains the fallback when a directory is still busy.
func (g *v1Group) remove() error {
	subs, err := jobHierarchy()
	if err == nil {
		busy := false
		for _, sub := range subs {
			p, ok := sub.(interface{ Path(string) string })
			if !ok {
				busy = true
				continue
			}
			if err := unix.Rmdir(p.Path(g.path)); err != nil && !errors.Is(err, unix.ENOENT) {
				busy = true
			}
		}
		if !busy {
			return nil
		}
	}
	if err := g.cg.Delete(); err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return fmt.Errorf("delete cgroup %s: %w", g.path, err)
	}
	return nil
}
