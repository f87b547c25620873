package exec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// slot is one reusable job cgroup (<parent>/slot-N in every v1 job
// controller). Between jobs it is verified empty and its limits are
// rewritten (only the files whose value changes) and its counters reset,
// instead of being removed and made again in seven controllers.
type slot struct {
	n     int
	rel   string            // cgroup path, e.g. /hpc-x/slot-3
	dirs  map[string]string // controller -> absolute directory
	cache map[string]string // file -> value last written
}

func (sl *slot) dir(ctrl string) string { return sl.dirs[ctrl] }

// slotPool hands out slots; the spawner's lock guards it.
type slotPool struct {
	parent string
	free   []*slot
	used   map[int]*slot
	next   int
	cpus   string // the parent's cpuset.cpus, for jobs without a CPU set
	memsw  bool
}

func newSlotPool(parent string) *slotPool {
	_, err := os.Stat(v1Root + "/memory/memory.memsw.limit_in_bytes")
	return &slotPool{parent: parent, used: map[int]*slot{}, memsw: err == nil}
}

func (p *slotPool) newSlot(n int) *slot {
	rel := path.Join("/", p.parent, "slot-"+strconv.Itoa(n))
	sl := &slot{n: n, rel: rel, dirs: map[string]string{}, cache: map[string]string{}}
	subs, _ := jobHierarchy()
	for _, s := range subs {
		if pp, ok := s.(interface{ Path(string) string }); ok {
			sl.dirs[string(s.Name())] = pp.Path(rel)
		}
	}
	return sl
}

// claim marks slot n used by a job found in the journal.
func (p *slotPool) claim(n int) *slot {
	if n <= 0 {
		return nil
	}
	sl := p.used[n]
	if sl == nil {
		sl = p.newSlot(n)
		p.used[n] = sl
	}
	p.next = max(p.next, n)
	return sl
}

// adoptLeftovers takes the slots a previous spawner left that no held job
// uses: emptied, they are free again.
func (p *slotPool) adoptLeftovers() {
	ents, _ := os.ReadDir(filepath.Join(v1Root, "freezer", p.parent))
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "slot-"))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "slot-") || err != nil || n <= 0 || p.used[n] != nil {
			continue
		}
		p.next = max(p.next, n)
		sl := p.newSlot(n)
		sl.noDomainRebuilds()
		if !sl.empty() {
			_ = sl.killAll()
		}
		p.free = append(p.free, sl)
	}
}

// get returns a slot with res applied and no process inside.
func (p *slotPool) get(res *specs.LinuxResources) (*slot, error) {
	for len(p.free) > 0 {
		sl := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		if !sl.empty() {
			// Someone put a process there meanwhile: not ours to reuse.
			_ = sl.killAll()
		}
		if err := p.apply(sl, res); err != nil {
			_ = sl.remove()
			continue
		}
		p.used[sl.n] = sl
		return sl, nil
	}
	p.next++
	sl := p.newSlot(p.next)
	if _, err := (&v1Driver{parent: p.parent}).createAt(sl.rel, res); err != nil {
		return nil, err
	}
	sl.noDomainRebuilds()
	// What createAt wrote, so the next job rewrites only what differs.
	want := p.values(res)
	for _, k := range want.order {
		sl.cache[k] = want.vals[k]
	}
	p.used[sl.n] = sl
	return sl, nil
}

// put returns a released, empty slot to the pool. Memory still charged to
// it (the last job's page cache) is reclaimed first, so that the next job's
// peak is its own.
func (p *slotPool) put(sl *slot) {
	if sl == nil {
		return
	}
	delete(p.used, sl.n)
	usage := filepath.Join(sl.dir("memory"), "memory.usage_in_bytes")
	if u, err := readInt(usage); err == nil && u > reclaimAbove {
		_ = writeCg(filepath.Join(sl.dir("memory"), "memory.force_empty"), "0")
		// What no reclaim frees (files the job left in a tmpfs such as
		// /dev/shm, with no swap) would count against the next job's
		// limit and OOM-kill it for another's memory: the slot goes
		// instead (its charge moves up to the parent) and a fresh one
		// serves the next job.
		if u, err := readInt(usage); err == nil && u > reclaimAbove && sl.remove() {
			return
		}
	}
	p.free = append(p.free, sl)
}

// reclaimAbove is how much memory a released slot may keep charged (page
// cache of the last job's files) before it is reclaimed: a reclaim costs
// more than the whole rest of a short job's launch, and a little leftover
// only raises the next job's peak by as much.
const reclaimAbove = 4 << 20

// removeFree removes the free slots (the spawner stops, or the agent does).
// A thread that launched a job may still be ending inside a slot: its
// removal is retried a moment.
func (p *slotPool) removeFree() {
	deadline := time.Now().Add(2 * time.Second)
	for _, sl := range p.free {
		for !sl.remove() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	p.free = nil
}

type slotValues struct {
	order []string
	vals  map[string]string
}

// values lists the files a job's limits set, in a safe writing order.
func (p *slotPool) values(res *specs.LinuxResources) slotValues {
	v := slotValues{vals: map[string]string{}}
	set := func(k, val string) { v.order = append(v.order, k); v.vals[k] = val }
	mem, swap := "-1", "-1"
	if res.Memory != nil && res.Memory.Limit != nil {
		mem = strconv.FormatInt(*res.Memory.Limit, 10)
		if res.Memory.Swap != nil {
			swap = strconv.FormatInt(*res.Memory.Swap, 10)
		}
	}
	set("memory/memory.limit_in_bytes", mem)
	if p.memsw {
		set("memory/memory.memsw.limit_in_bytes", swap)
	}
	if p.cpus == "" {
		// Read on first use, whichever slot comes first: a slot adopted
		// from a killed spawner must get the whole parent's CPUs back
		// too, not keep its last job's set.
		b, _ := os.ReadFile(filepath.Join(v1Root, "cpuset", p.parent, "cpuset.cpus"))
		p.cpus = strings.TrimSpace(string(b))
	}
	quota, period, cpus := "-1", strconv.Itoa(cfsPeriod), p.cpus
	if res.CPU != nil {
		if res.CPU.Period != nil {
			period = strconv.FormatUint(*res.CPU.Period, 10)
		}
		if res.CPU.Quota != nil {
			quota = strconv.FormatInt(*res.CPU.Quota, 10)
		}
		if res.CPU.Cpus != "" {
			cpus = res.CPU.Cpus
		}
	}
	set("cpu/cpu.cfs_period_us", period)
	set("cpu/cpu.cfs_quota_us", quota)
	if cpus != "" {
		set("cpuset/cpuset.cpus", cpus)
	}
	pids := "max"
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit > 0 {
		pids = strconv.FormatInt(*res.Pids.Limit, 10)
	}
	set("pids/pids.max", pids)
	var rules []string
	for _, d := range res.Devices {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		rules = append(rules, file+"="+deviceRule(d))
	}
	set("devices", strings.Join(rules, ";"))
	return v
}

func deviceRule(d specs.LinuxDeviceCgroup) string {
	num := func(n *int64) string {
		if n == nil || *n < 0 {
			return "*"
		}
		return strconv.FormatInt(*n, 10)
	}
	t := d.Type
	if t == "" {
		t = "a"
	}
	return fmt.Sprintf("%s %s:%s %s", t, num(d.Major), num(d.Minor), d.Access)
}

// apply writes the limits that differ from the slot's last job's.
func (p *slotPool) apply(sl *slot, res *specs.LinuxResources) error {
	want := p.values(res)
	memKeys := []string{"memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes"}
	if raising(sl.cache[memKeys[0]], want.vals[memKeys[0]]) {
		// memsw must stay >= the limit at every step: raise it first.
		memKeys[0], memKeys[1] = memKeys[1], memKeys[0]
	}
	for _, k := range append(memKeys, want.order...) {
		val, ok := want.vals[k]
		if !ok || sl.cache[k] == val {
			continue
		}
		if k == "devices" {
			for _, r := range strings.Split(val, ";") {
				file, rule, _ := strings.Cut(r, "=")
				if err := writeCg(filepath.Join(sl.dir("devices"), file), rule); err != nil {
					delete(sl.cache, k)
					return err
				}
			}
		} else {
			ctrl, file, _ := strings.Cut(k, "/")
			if err := writeCg(filepath.Join(sl.dir(ctrl), file), val); err != nil {
				delete(sl.cache, k)
				return err
			}
		}
		sl.cache[k] = val
	}
	return nil
}

// raising reports whether a memory limit goes up (-1 is unlimited).
func raising(old, new string) bool {
	if new == "-1" {
		return old != "-1"
	}
	if old == "" || old == "-1" {
		return false
	}
	o, _ := strconv.ParseInt(old, 10, 64)
	n, _ := strconv.ParseInt(new, 10, 64)
	return n > o
}

func writeCg(file, val string) error {
	fd, err := unix.Open(file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(val)); err != nil {
		return fmt.Errorf("write %s %q: %w", file, val, err)
	}
	return nil
}

// noDomainRebuilds turns off the slot's own scheduler load balancing flag:
// with it on, every change of cpuset.cpus (a reused slot gets the CPUs of
// each new job) rebuilds the kernel's scheduling domains, which cost more
// CPU than all the rest of a launch. Balancing is unchanged: the root
// cpuset balances over all CPUs whatever its children say.
func (sl *slot) noDomainRebuilds() {
	_ = writeCg(filepath.Join(sl.dir("cpuset"), "cpuset.sched_load_balance"), "0")
}

// resetCounters zeroes CPU time and peak memory and returns the OOM kill
// count so far (it cannot be reset: the job's own is the difference).
func (sl *slot) resetCounters() uint64 {
	_ = writeCg(filepath.Join(sl.dir("cpuacct"), "cpuacct.usage"), "0")
	_ = writeCg(filepath.Join(sl.dir("memory"), "memory.max_usage_in_bytes"), "0")
	n, _ := sl.oomKills()
	return n
}

// oomKills and usage read the slot's counters as a job's cgroup does.
func (sl *slot) oomKills() (uint64, error) { return (&v1Group{path: sl.rel}).oomKills() }

func (sl *slot) usage() (time.Duration, int64, bool) {
	cpu, peak, ok, _ := (&v1Group{path: sl.rel}).usage()
	return cpu, peak, ok
}

// empty reports whether no process is left in the slot. The spawner itself
// is listed while the thread that forked the job is still ending there.
func (sl *slot) empty() bool {
	b, err := os.ReadFile(filepath.Join(sl.dir("freezer"), "cgroup.procs"))
	if err != nil {
		return true
	}
	self := strconv.Itoa(os.Getpid())
	for _, f := range strings.Fields(string(b)) {
		if f != self {
			return false
		}
	}
	return true
}

// killAll kills every process in the slot and returns once none is left.
func (sl *slot) killAll() error {
	cg, err := cgroup1.Load(cgroup1.StaticPath(sl.rel), withJobHierarchy)
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load cgroup %s: %w", sl.rel, err)
	}
	// Never the spawner (a launching thread may still be ending there).
	return (&v1Group{cg: cg, path: sl.rel}).killAll(os.Getpid())
}

// remove deletes the slot's directories; false when one is still busy.
func (sl *slot) remove() bool {
	ok := true
	for _, d := range sl.dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			ok = false
		}
	}
	return ok
}

// taskDirs are the slot's directories, one per hierarchy.
func (sl *slot) taskDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range sl.dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}
