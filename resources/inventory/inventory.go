package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/mem"
	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/resources"
)

// GPU is one NVIDIA GPU of a node as NVML reports it. Fields NVML could not
// read keep their zero value, or -1 where zero is a valid answer.
type GPU struct {
	Index    int    `json:"index"` // NVML index (PCI bus order)
	UUID     string `json:"uuid"`
	Model    string `json:"model"`      // NVML product name, e.g. "NVIDIA H100 80GB HBM3"
	Memory   int64  `json:"memory"`     // bytes
	MIG      bool   `json:"mig"`        // MIG mode currently enabled
	PCIBusID string `json:"pci_bus_id"` // sysfs/lspci form "0000:3b:00.0", not NVML's "00000000:3B:00.0"
	NUMANode int    `json:"numa_node"`  // -1 when unknown
	Minor    int    `json:"minor"`      // /dev/nvidiaN minor number, -1 when unknown
}

// Inventory is what a node offers to the scheduler.
type Inventory struct {
	Hostname string `json:"hostname"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
	CPUs     int    `json:"cpus"`    // usable logical CPUs (len(CPUIDs))
	CPUIDs   []int  `json:"cpu_ids"` // ids of the usable CPUs, sorted
	Memory   int64  `json:"memory"`  // total bytes
	GPUs     []GPU  `json:"gpus"`
	// Links is len(GPUs) square: Links[i][j] is the link between GPUs[i]
	// and GPUs[j], resources.LinkNone on the diagonal.
	Links [][]resources.Link `json:"links"`
	// GPUSource is "nvml" when NVML was read, otherwise why there are no
	// GPUs, e.g. "nvml: library not found (no NVIDIA driver)".
	GPUSource string `json:"gpu_source"`
}

// GPUSourceNVML is Inventory.GPUSource when the GPUs were read from NVML.
const GPUSourceNVML = "nvml"

// Discover reads the host (gopsutil) and its GPUs through the real NVML
// library. A host without an NVIDIA driver is a normal CPU node: it gets
// zero GPUs, one Info line saying why, and no error. Errors are returned
// only when the CPUs or memory cannot be read, since without them the node
// cannot be scheduled at all.
func Discover(ctx context.Context, log *slog.Logger) (Inventory, error) {
	log = orDiscard(log)
	inv := Inventory{}

	// Each host field is read on its own: host.Info fails as a whole when
	// any one of a dozen probes (host id, virtualisation...) fails, which
	// happens in containers, and none of these is worth refusing a node for.
	var err error
	if inv.Hostname, err = os.Hostname(); err != nil {
		log.Warn("inventory: hostname unavailable", "err", err)
	}
	if platform, _, version, err := host.PlatformInformationWithContext(ctx); err != nil {
		log.Debug("inventory: OS platform unavailable", "err", err)
	} else {
		inv.OS = strings.TrimSpace(platform + " " + version)
	}
	if inv.Kernel, err = host.KernelVersionWithContext(ctx); err != nil {
		log.Debug("inventory: kernel version unavailable", "err", err)
	}

	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return Inventory{}, fmt.Errorf("inventory: read memory: %w", err)
	}
	inv.Memory = int64(vm.Total)

	if inv.CPUIDs, err = cpuIDs(ctx, log); err != nil {
		return Inventory{}, fmt.Errorf("inventory: read CPUs: %w", err)
	}
	inv.CPUs = len(inv.CPUIDs)

	if err := ctx.Err(); err != nil {
		return Inventory{}, fmt.Errorf("inventory: %w", err)
	}
	inv.GPUs, inv.Links, inv.GPUSource = discoverGPUs(nvml.New(), log)
	return inv, nil
}

// discoverGPUs turns GPUs' error into Inventory.GPUSource: a missing
// driver is expected on CPU nodes (Info), anything else is a broken GPU
// node that an admin should look at (Warn).
func discoverGPUs(lib nvml.Interface, log *slog.Logger) ([]GPU, [][]resources.Link, string) {
	gpus, links, err := GPUs(lib, log)
	if err == nil {
		log.Info("inventory: GPUs found", "count", len(gpus), "source", GPUSourceNVML)
		return gpus, links, GPUSourceNVML
	}
	var source string
	switch {
	case errors.Is(err, nvml.ERROR_LIBRARY_NOT_FOUND):
		source = "nvml: library not found (no NVIDIA driver)"
		log.Info("inventory: no GPUs: NVML library not found (no NVIDIA driver)")
	case errors.Is(err, nvml.ERROR_DRIVER_NOT_LOADED):
		source = "nvml: NVIDIA kernel driver not loaded"
		log.Info("inventory: no GPUs: NVML present but the NVIDIA kernel driver is not loaded")
	default:
		source = err.Error()
		log.Warn("inventory: no GPUs: NVML failed", "err", err)
	}
	return []GPU{}, [][]resources.Link{}, source
}

// cpuIDs lists the CPUs this process may run on. The affinity mask is what
// counts, not the machine's CPU count: under a cpuset (container, cgroup,
// taskset) only those CPUs can be handed to jobs.
func cpuIDs(ctx context.Context, log *slog.Logger) ([]int, error) {
	var set unix.CPUSet
	err := unix.SchedGetaffinity(0, &set)
	if err == nil && set.Count() > 0 {
		return cpuSetIDs(&set), nil
	}
	// sched_getaffinity fails with EINVAL on machines with more CPUs than a
	// CPUSet holds (1024); count them instead and assume all are usable.
	log.Debug("inventory: CPU affinity unavailable, using online CPU count", "err", err)
	n, err := cpu.CountsWithContext(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("count logical CPUs: %w", err)
	}
	if n <= 0 {
		return nil, fmt.Errorf("count logical CPUs: got %d", n)
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids, nil
}

// cpuSetIDs returns the ids set in s, ascending.
func cpuSetIDs(s *unix.CPUSet) []int {
	want := s.Count()
	ids := make([]int, 0, want)
	for i := 0; i < len(s)*bits.UintSize && len(ids) < want; i++ {
		if s.IsSet(i) {
			ids = append(ids, i)
		}
	}
	return ids
}

// orDiscard lets callers pass a nil logger.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
