package exec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPids is the pids limit when a Spec sets none. On this platform
// pids.max counts threads, and a single Go or CUDA program may use dozens, so
// the default only guards against fork bombs.
const DefaultPids = 16384

// cfsPeriod is the CFS period in microseconds that quotas are expressed in.
const cfsPeriod = 100000

// nvidiaMajor is the character-device major number of /dev/nvidiaN.
const nvidiaMajor = 195

// Limits computes a job's cgroup limits as plain data, without touching the
// system. The same value feeds the v1 controllers and, converted, cgroup2.
//
// Device rules come first as "allow everything" followed by one deny per node
// GPU not allocated to the job: both the v1 devices controller and the v2
// eBPF filter give the later, more specific rule precedence. Nothing else is
// denied; in particular /dev/null stays usable (os/exec opens it).
func Limits(s Spec) *specs.LinuxResources {
	wild := int64(-1) // the v2 eBPF filter dereferences Major/Minor: never nil
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "a", Major: &wild, Minor: &wild, Access: "rwm"}},
	}
	for _, m := range deniedGPUMinors(s) {
		major, minor := int64(nvidiaMajor), int64(m)
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
	}
	if s.Memory > 0 {
		limit, swap := s.Memory, s.Memory // v1 memsw is memory+swap: equal means no swap
		r.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	if len(s.CPUSet) > 0 {
		quota, period := int64(len(s.CPUSet))*cfsPeriod, uint64(cfsPeriod)
		r.CPU = &specs.LinuxCPU{Cpus: CPUSetString(s.CPUSet), Quota: &quota, Period: &period}
	}
	pids := s.Pids
	if pids <= 0 {
		pids = DefaultPids
	}
	r.Pids = &specs.LinuxPids{Limit: &pids}
	return r
}

// deniedGPUMinors returns, sorted and without duplicates, the node's GPU
// minors that are not allocated to the job.
func deniedGPUMinors(s Spec) []int {
	own := make(map[int]bool, len(s.GPUs))
	for _, g := range s.GPUs {
		own[g.Minor] = true
	}
	var out []int
	for _, m := range s.AllGPUMinors {
		if !own[m] {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CPUSetString renders CPU ids in the kernel's list format, e.g. "0-3,8".
func CPUSetString(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] <= c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if c[j] != c[i] {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}

// validate checks a Spec before anything is written; allowRoot is the
// executor's policy for uid 0.
func validate(s Spec, allowRoot bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: job %d: %s", ErrInvalidSpec, s.JobID, fmt.Sprintf(format, a...))
	}
	if s.JobID == 0 {
		return bad("job id 0")
	}
	if (len(s.Argv) == 0) == (s.Script == "") {
		return bad("exactly one of Argv or Script must be set")
	}
	if len(s.Argv) > 0 && s.Argv[0] == "" {
		return bad("empty command")
	}
	if s.UID == 0 && !allowRoot {
		return fmt.Errorf("job %d: %w (set AllowRoot, as dev mode does, to run uid 0)", s.JobID, ErrRootRefused)
	}
	for _, p := range []struct{ name, path string }{{"stdout", s.Stdout}, {"stderr", s.Stderr}, {"working directory", s.Dir}} {
		if p.path != "" && !filepath.IsAbs(p.path) {
			return bad("%s %q is not an absolute path", p.name, p.path)
		}
	}
	seen := map[int]bool{}
	for _, c := range s.CPUSet {
		if c < 0 || seen[c] {
			return bad("CPU set %v has a negative or repeated id", s.CPUSet)
		}
		seen[c] = true
	}
	if s.Memory < 0 || s.Pids < 0 || s.Walltime < 0 || s.WarnBefore < 0 {
		return bad("negative memory, pids, walltime or warning time")
	}
	for _, g := range s.GPUs {
		if g.Index < 0 || g.Minor < 0 {
			return bad("GPU with negative index or minor")
		}
	}
	for _, kv := range s.Env {
		if !strings.Contains(kv, "=") {
			return bad("environment entry %q is not KEY=VALUE", kv)
		}
	}
	return nil
}
