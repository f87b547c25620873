package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNoCgroup: the job's cgroup does not exist (already removed).
var errNoCgroup = errors.New("job cgroup does not exist")

// driver creates and finds job cgroups; one per isolation mode.
type driver interface {
	create(jobID uint64, res *specs.LinuxResources) (jobGroup, error)
	// load returns errNoCgroup (wrapped) when the cgroup is gone.
	load(jobID uint64) (jobGroup, error)
	// removeParent removes the daemon's own (empty) subtree; one still
	// holding jobs stays.
	removeParent()
}

// jobGroup is one job's confinement. Implementations: v1Group, v2Group and
// treeGroup (the fallback, which confines nothing and kills by process tree).
type jobGroup interface {
	// enterShim moves pid in (v1: the shim, before it starts the job).
	enterShim(pid int) error
	// leave moves the calling shim out again once the job runs, so that
	// freezing or killing the group never hits the shim itself.
	leave() error
	// prepareChild makes a child start inside the group (v2: clone3 into
	// the group's fd); the returned func releases what it opened.
	prepareChild(attr *syscall.SysProcAttr) (func(), error)
	// killAll SIGKILLs every process of the job; shimPID is never killed.
	// It returns once none is left (or fails).
	killAll(shimPID int) error
	// oomKills counts the kernel OOM kills inside the group.
	oomKills() (uint64, error)
	// usage reads CPU time and peak memory; ok is false when the mechanism
	// has no such counters and rusage must serve.
	usage() (cpu time.Duration, peak int64, ok bool, err error)
	// remove deletes the group; it must be empty.
	remove() error
}

// detectIsolation picks the strongest mechanism this host and process allow.
func detectIsolation() Isolation {
	if os.Geteuid() != 0 {
		return IsolationNone
	}
	switch cgroups.Mode() {
	case cgroups.Unified:
		if hasV2Controllers(v2DefaultMount, "memory", "cpu", "pids") {
			return IsolationV2
		}
	case cgroups.Hybrid, cgroups.Legacy:
		if fi, err := os.Stat(v1Root + "/memory"); err == nil && fi.IsDir() {
			return IsolationV1
		}
	}
	return IsolationNone
}

// newDriver returns the driver for an isolation mode. For cgroup-v2 on a
// hybrid host (forced, for development and tests) it uses the unified mount
// and only the controllers available there.
func newDriver(iso Isolation, parent, v2mount string) (driver, error) {
	switch iso {
	case IsolationV1:
		return &v1Driver{parent: parent}, nil
	case IsolationV2:
		return newV2Driver(v2mount, parent)
	case IsolationNone:
		return treeDriver{}, nil
	}
	return nil, fmt.Errorf("unknown isolation %q", iso)
}

// v2MountFor returns the cgroup2 mount point for this host's mode.
func v2MountFor() string {
	if cgroups.Mode() == cgroups.Unified {
		return v2DefaultMount
	}
	return v2HybridMount
}

// v2Controllers reads the controllers a cgroup2 mount offers.
func v2Controllers(mount string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(string(b)) {
		have[c] = true
	}
	return have, nil
}

func hasV2Controllers(mount string, want ...string) bool {
	have, err := v2Controllers(mount)
	if err != nil {
		return false
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// treeDriver is the fallback without cgroups: there is nothing to create, and
// the job's processes are found as the shim's descendants.
type treeDriver struct{}

func (treeDriver) create(uint64, *specs.LinuxResources) (jobGroup, error) { return treeGroup{}, nil }
func (treeDriver) load(uint64) (jobGroup, error)                          { return treeGroup{}, nil }
func (treeDriver) removeParent()                                          {}

type treeGroup struct{}

func (treeGroup) enterShim(int) error                               { return nil }
func (treeGroup) leave() error                                      { return nil }
func (treeGroup) prepareChild(*syscall.SysProcAttr) (func(), error) { return func() {}, nil }
func (treeGroup) killAll(shimPID int) error                         { return killTree(shimPID) }
func (treeGroup) oomKills() (uint64, error)                         { return 0, nil }
func (treeGroup) usage() (time.Duration, int64, bool, error)        { return 0, 0, false, nil }
func (treeGroup) remove() error                                     { return nil }
