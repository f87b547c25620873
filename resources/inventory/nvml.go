package inventory

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/hpc-sched/hpc/resources"
)

// GPUs reads the GPUs and their pairwise links through lib, the real NVML
// library (nvml.New()) or a mock. It calls Init first and, only when Init
// succeeded, anything else and finally Shutdown: after a failed Init the
// real library aborts the process on the next call (unrecoverable).
//
// The error is nil or wraps the nvml.Return of a failed Init or device
// count, so callers can test errors.Is(err, nvml.ERROR_LIBRARY_NOT_FOUND).
// A GPU field NVML cannot read degrades (logged at Debug) instead of
// failing the inventory; a GPU whose handle cannot be had is left out
// (Warn), and the rest keep their NVML index.
func GPUs(lib nvml.Interface, log *slog.Logger) ([]GPU, [][]resources.Link, error) {
	return readGPUs(lib, orDiscard(log), "/sys")
}

// readGPUs is GPUs with the sysfs mount point as a parameter, for tests.
func readGPUs(lib nvml.Interface, log *slog.Logger, sysRoot string) ([]GPU, [][]resources.Link, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("nvml: init: %w", ret)
	}
	defer func() {
		if ret := lib.Shutdown(); ret != nvml.SUCCESS {
			log.Debug("nvml: shutdown failed", "err", ret)
		}
	}()

	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("nvml: device count: %w", ret)
	}
	// nvmlDeviceGetNumaNodeId exists only in recent drivers, and calling a
	// symbol the loaded library lacks aborts the process: look it up first.
	hasNUMA := symbolExists(lib, "nvmlDeviceGetNumaNodeId")

	gpus := make([]GPU, 0, n)
	devs := make([]nvml.Device, 0, n)
	for i := 0; i < n; i++ {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			log.Warn("nvml: GPU left out: no handle", "index", i, "err", ret)
			continue
		}
		gpus = append(gpus, describeGPU(dev, i, hasNUMA, sysRoot, log))
		devs = append(devs, dev)
	}
	return gpus, linkMatrix(devs, gpus, log), nil
}

func symbolExists(lib nvml.Interface, name string) bool {
	ext := lib.Extensions()
	return ext != nil && ext.LookupSymbol(name) == nil
}

// describeGPU reads one GPU's fields, each on its own so that one
// unsupported query (common on older or consumer GPUs) costs one field.
func describeGPU(dev nvml.Device, index int, hasNUMA bool, sysRoot string, log *slog.Logger) GPU {
	g := GPU{Index: index, NUMANode: -1, Minor: -1}
	unavailable := func(field string, ret nvml.Return) {
		log.Debug("nvml: GPU field unavailable", "index", index, "field", field, "err", ret)
	}

	if uuid, ret := dev.GetUUID(); ret == nvml.SUCCESS {
		g.UUID = uuid
	} else {
		// Without a UUID the GPU can still be isolated by index, but the
		// admin should know.
		log.Warn("nvml: GPU UUID unavailable", "index", index, "err", ret)
	}
	if name, ret := dev.GetName(); ret == nvml.SUCCESS {
		g.Model = name
	} else {
		unavailable("model", ret)
	}
	if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		g.Memory = int64(m.Total)
	} else {
		unavailable("memory", ret)
	}
	if current, _, ret := dev.GetMigMode(); ret == nvml.SUCCESS {
		g.MIG = current == nvml.DEVICE_MIG_ENABLE
	} else {
		unavailable("mig", ret) // NOT_SUPPORTED on GPUs without MIG
	}
	if pci, ret := dev.GetPciInfo(); ret == nvml.SUCCESS {
		g.PCIBusID = normalizeBusID(cString(pci.BusId[:]))
	} else {
		unavailable("pci_bus_id", ret)
	}
	if minor, ret := dev.GetMinorNumber(); ret == nvml.SUCCESS {
		g.Minor = minor
	} else {
		unavailable("minor", ret)
	}
	if hasNUMA {
		if node, ret := dev.GetNumaNodeId(); ret == nvml.SUCCESS && node >= 0 {
			g.NUMANode = node
		} else {
			unavailable("numa_node (nvml)", ret)
		}
	}
	if g.NUMANode < 0 && g.PCIBusID != "" {
		g.NUMANode = sysfsNUMANode(sysRoot, g.PCIBusID, log)
	}
	return g
}

// linkMatrix asks NVML about every unordered pair once and mirrors the
// answer, so the matrix is symmetric by construction.
func linkMatrix(devs []nvml.Device, gpus []GPU, log *slog.Logger) [][]resources.Link {
	n := len(devs)
	m := make([][]resources.Link, n)
	for i := range m {
		m[i] = make([]resources.Link, n)
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			l := pairLink(devs[i], devs[j], gpus[i].Index, gpus[j].Index, log)
			m[i][j], m[j][i] = l, l
		}
	}
	return m
}

// pairLink asks for NVLink P2P first (it covers both NVLink bridges and
// NVSwitch, where the PCIe ancestor says nothing about NVLink), then the
// PCIe common ancestor. An unanswerable pair counts as resources.LinkSystem, the
// worst real link, so the placer never prefers a pair it knows nothing of.
func pairLink(a, b nvml.Device, ai, bi int, log *slog.Logger) resources.Link {
	status, ret := a.GetP2PStatus(b, nvml.P2P_CAPS_INDEX_NVLINK)
	if ret == nvml.SUCCESS && status == nvml.P2P_STATUS_OK {
		return resources.LinkNVLink
	}
	if ret != nvml.SUCCESS {
		log.Debug("nvml: NVLink P2P status unavailable", "gpu", ai, "peer", bi, "err", ret)
	}
	level, ret := a.GetTopologyCommonAncestor(b)
	if ret != nvml.SUCCESS {
		log.Debug("nvml: topology unavailable, assuming system link", "gpu", ai, "peer", bi, "err", ret)
		return resources.LinkSystem
	}
	return TopologyLink(level)
}

// TopologyLink maps an NVML PCIe topology level onto a resources.Link. INTERNAL (two
// GPUs on one board, behind the board's own PCIe switch) counts as
// resources.LinkSingleSwitch; an unknown level counts as resources.LinkSystem.
func TopologyLink(level nvml.GpuTopologyLevel) resources.Link {
	switch level {
	case nvml.TOPOLOGY_INTERNAL, nvml.TOPOLOGY_SINGLE:
		return resources.LinkSingleSwitch
	case nvml.TOPOLOGY_MULTIPLE:
		return resources.LinkMultiSwitch
	case nvml.TOPOLOGY_HOSTBRIDGE:
		return resources.LinkHostBridge
	case nvml.TOPOLOGY_NODE:
		return resources.LinkNode
	default: // TOPOLOGY_SYSTEM and anything newer we do not know
		return resources.LinkSystem
	}
}

// cString reads a NUL-terminated C char array.
func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// normalizeBusID turns NVML's "00000000:3B:00.0" into sysfs's
// "0000:3b:00.0", so the id can name /sys/bus/pci/devices entries and
// match lspci. Anything not shaped like a bus id is only lower-cased.
func normalizeBusID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	domain, rest, ok := strings.Cut(id, ":")
	if !ok || !strings.Contains(rest, ":") {
		return id
	}
	if len(domain) > 4 && strings.Trim(domain[:len(domain)-4], "0") == "" {
		domain = domain[len(domain)-4:]
	}
	return domain + ":" + rest
}

// sysfsNUMANode reads the NUMA node the kernel assigns to a PCI device;
// -1 when there is none (the kernel writes -1 on single-node machines).
func sysfsNUMANode(sysRoot, busID string, log *slog.Logger) int {
	path := filepath.Join(sysRoot, "bus", "pci", "devices", busID, "numa_node")
	b, err := os.ReadFile(path)
	if err != nil {
		log.Debug("nvml: GPU NUMA node unavailable from sysfs", "pci_bus_id", busID, "err", err)
		return -1
	}
	node, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || node < 0 {
		log.Debug("nvml: GPU has no NUMA node in sysfs", "pci_bus_id", busID, "value", strings.TrimSpace(string(b)))
		return -1
	}
	return node
}
