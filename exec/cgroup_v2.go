package exec

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	v2DefaultMount = "/sys/fs/cgroup"         // unified hosts
	v2HybridMount  = "/sys/fs/cgroup/unified" // hybrid hosts: few or no controllers
)

// v2Driver places each job in <mount>/<parent>/job-<id>. The shim stays
// outside: the job starts inside through clone3 with CLONE_INTO_CGROUP, so
// cgroup.kill can kill the whole group without touching the shim.
type v2Driver struct {
	mount, parent string
	have          map[string]bool // controllers available at the mount
}

func newV2Driver(mount, parent string) (*v2Driver, error) {
	have, err := v2Controllers(mount)
	if err != nil {
		return nil, fmt.Errorf("cgroup2 at %s: %w", mount, err)
	}
	return &v2Driver{mount: mount, parent: parent, have: have}, nil
}

func (d *v2Driver) group(jobID uint64) string {
	return path.Join("/", d.parent, "job-"+strconv.FormatUint(jobID, 10))
}

// resources converts the limits; a limit whose controller the mount lacks is
// an error on a unified host, but dropped on a hybrid one (where v2 can only
// be forced for development: v1 holds those controllers there).
func (d *v2Driver) resources(res *specs.LinuxResources) (*cgroup2.Resources, error) {
	r := cgroup2.ToResources(res)
	r.Devices = res.Devices // ToResources leaves devices out
	strict := d.mount == v2DefaultMount
	for ctrl, present := range map[string]bool{"memory": r.Memory != nil, "cpu": r.CPU != nil && r.CPU.Max != "", "cpuset": r.CPU != nil && r.CPU.Cpus != "", "pids": r.Pids != nil} {
		if !present || d.have[ctrl] {
			continue
		}
		if strict {
			return nil, fmt.Errorf("cgroup2 controller %q is not available at %s", ctrl, d.mount)
		}
		switch ctrl {
		case "memory":
			r.Memory = nil
		case "cpu", "cpuset":
			r.CPU = nil
		case "pids":
			r.Pids = nil
		}
	}
	return r, nil
}

func (d *v2Driver) create(jobID uint64, res *specs.LinuxResources) (jobGroup, error) {
	r, err := d.resources(res)
	if err != nil {
		return nil, err
	}
	g := d.group(jobID)
	m, err := cgroup2.NewManager(d.mount, g, r)
	if err != nil {
		_ = os.Remove(filepath.Join(d.mount, g))
		return nil, fmt.Errorf("create cgroup v2 %s: %w", g, err)
	}
	return &v2Group{m: m, dir: filepath.Join(d.mount, g)}, nil
}

func (d *v2Driver) removeParent() {
	_ = unix.Rmdir(filepath.Join(d.mount, d.parent))
}

func (d *v2Driver) load(jobID uint64) (jobGroup, error) {
	g := d.group(jobID)
	dir := filepath.Join(d.mount, g)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load cgroup v2 %s: %w", g, errNoCgroup)
	}
	m, err := cgroup2.Load(g, cgroup2.WithMountpoint(d.mount))
	if err != nil {
		return nil, fmt.Errorf("load cgroup v2 %s: %w", g, err)
	}
	return &v2Group{m: m, dir: dir}, nil
}

type v2Group struct {
	m   *cgroup2.Manager
	dir string
}

func (g *v2Group) enterShim(int) error { return nil }

func (g *v2Group) leave() error { return nil } // the shim never enters

func (g *v2Group) prepareChild(attr *syscall.SysProcAttr) (func(), error) {
	fd, err := unix.Open(g.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", g.dir, err)
	}
	attr.UseCgroupFD = true
	attr.CgroupFD = fd
	return func() { unix.Close(fd) }, nil
}

func (g *v2Group) killAll(shimPID int) error {
	for round := 0; round < 200; round++ {
		pids, err := g.m.Procs(true)
		if errors.Is(err, os.ErrNotExist) {
			return nil // emptied and removed by the shim meanwhile
		}
		if err != nil {
			return fmt.Errorf("list processes of %s: %w", g.dir, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if round%20 == 0 {
			if err := g.m.Kill(); err != nil { // cgroup.kill, or freeze+kill before 5.14
				return fmt.Errorf("kill %s: %w", g.dir, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s still has processes after cgroup.kill", g.dir)
}

func (g *v2Group) oomKills() (uint64, error) {
	v, err := readKey(filepath.Join(g.dir, "memory.events"), "oom_kill")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

func (g *v2Group) usage() (time.Duration, int64, bool, error) {
	usec, err := readKey(filepath.Join(g.dir, "cpu.stat"), "usage_usec")
	if err != nil {
		return 0, 0, false, err
	}
	// memory.peak exists from kernel 5.19; without it rusage's peak serves.
	peak, _ := readInt(filepath.Join(g.dir, "memory.peak"))
	return time.Duration(usec) * time.Microsecond, peak, true, nil
}

func (g *v2Group) remove() error {
	if err := g.m.Delete(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete cgroup %s: %w", g.dir, err)
	}
	return nil
}

// readKey reads "key value" lines (cpu.stat, memory.events) and returns key's.
func readKey(file, key string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %s: %w", file, key, err)
			}
			return n, nil
		}
	}
	return 0, sc.Err()
}
