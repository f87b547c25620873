package inventory

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"

	"github.com/hpc-sched/hpc/resources"
)

const a100Memory = 40 << 30 // the dgxa100 mock's A100-SXM4-40GB

// testLogger writes Debug and up to the test's output, so degraded fields
// show with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mockTopology describes a node in NVML's own vocabulary, the way a real
// driver answers, independently of our resources.Link levels.
type mockTopology struct {
	n        int
	p2p      func(i, j int) (nvml.GpuP2PStatus, nvml.Return) // NVLink P2P status
	ancestor func(i, j int) nvml.GpuTopologyLevel            // PCIe common ancestor
	numa     func(i int) int
	minor    func(i int) int
}

// newMockNode builds a dgxa100 mock with topo.n A100s and installs the
// topology, NUMA and minor answers that the mock leaves unset (it panics
// on them otherwise).
func newMockNode(t *testing.T, topo mockTopology) *dgxa100.Server {
	t.Helper()
	s := dgxa100.NewWithGPUs(gpus.Multiple(topo.n, gpus.A100_SXM4_40GB)...)
	index := func(d nvml.Device) int {
		md, ok := d.(*dgxa100.Device)
		if !ok {
			t.Fatalf("peer is %T, not a mock device", d)
		}
		return md.Index
	}
	for _, d := range s.Devices {
		md := d.(*dgxa100.Device)
		i := md.Index
		md.GetP2PStatusFunc = func(peer nvml.Device, caps nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			if caps != nvml.P2P_CAPS_INDEX_NVLINK {
				t.Errorf("GetP2PStatus asked for caps %d, want NVLink", caps)
			}
			return topo.p2p(i, index(peer))
		}
		md.GetTopologyCommonAncestorFunc = func(peer nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			return topo.ancestor(i, index(peer)), nvml.SUCCESS
		}
		md.GetNumaNodeIdFunc = func() (int, nvml.Return) { return topo.numa(i), nvml.SUCCESS }
		if topo.minor != nil {
			md.Minor = topo.minor(i)
		}
	}
	return s
}

func p2p(ok bool) (nvml.GpuP2PStatus, nvml.Return) {
	if ok {
		return nvml.P2P_STATUS_OK, nvml.SUCCESS
	}
	return nvml.P2P_STATUS_NOT_SUPPORTED, nvml.SUCCESS
}

// dgxNVSwitch: 8 GPUs, all pairs NVLink through NVSwitch. The PCIe tree
// underneath (pairs behind PLX switches, halves per socket) must not show.
func dgxNVSwitch() mockTopology {
	return mockTopology{
		n:   8,
		p2p: func(i, j int) (nvml.GpuP2PStatus, nvml.Return) { return p2p(true) },
		ancestor: func(i, j int) nvml.GpuTopologyLevel {
			switch {
			case i/2 == j/2:
				return nvml.TOPOLOGY_MULTIPLE
			case i/4 == j/4:
				return nvml.TOPOLOGY_NODE
			}
			return nvml.TOPOLOGY_SYSTEM
		},
		numa:  func(i int) int { return []int{3, 3, 1, 1, 7, 7, 5, 5}[i] }, // DGX A100
		minor: func(i int) int { return 7 - i },                            // minors need not follow NVML order
	}
}

// nvlinkBridgePairs: n GPUs bridged in pairs; host bridge within a socket
// half, system across.
func nvlinkBridgePairs(n int) mockTopology {
	return mockTopology{
		n:   n,
		p2p: func(i, j int) (nvml.GpuP2PStatus, nvml.Return) { return p2p(i/2 == j/2) },
		ancestor: func(i, j int) nvml.GpuTopologyLevel {
			if i*2/n == j*2/n {
				return nvml.TOPOLOGY_HOSTBRIDGE
			}
			return nvml.TOPOLOGY_SYSTEM
		},
		numa: func(i int) int { return i * 2 / n },
	}
}

// pcieSingleSwitch: n GPUs, no NVLink, all behind one PCIe switch.
func pcieSingleSwitch(n int) mockTopology {
	return mockTopology{
		n:        n,
		p2p:      func(i, j int) (nvml.GpuP2PStatus, nvml.Return) { return p2p(false) },
		ancestor: func(i, j int) nvml.GpuTopologyLevel { return nvml.TOPOLOGY_SINGLE },
		numa:     func(i int) int { return 0 },
	}
}

// twoSocket: 8 PCIe GPUs, 0-3 on socket 0 and 4-7 on socket 1. The NVLink
// P2P query itself fails here (as on GPUs without NVLink), which must fall
// through to the PCIe topology.
func twoSocket() mockTopology {
	return mockTopology{
		n:   8,
		p2p: func(i, j int) (nvml.GpuP2PStatus, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED },
		ancestor: func(i, j int) nvml.GpuTopologyLevel {
			if i/4 == j/4 {
				return nvml.TOPOLOGY_NODE
			}
			return nvml.TOPOLOGY_SYSTEM
		},
		numa: func(i int) int { return i / 4 },
	}
}

func TestGPUsTopologies(t *testing.T) {
	tests := []struct {
		name string
		topo mockTopology
		want [][]resources.Link
	}{
		{"dgx-nvswitch-8", dgxNVSwitch(), resources.NVSwitchLinks(8)},
		{"nvlink-pairs-4", nvlinkBridgePairs(4), resources.NVLinkPairsLinks(4)},
		{"nvlink-pairs-8", nvlinkBridgePairs(8), resources.NVLinkPairsLinks(8)},
		{"pcie-single-switch-4", pcieSingleSwitch(4), resources.PCIeLinks(4)},
		{"two-socket-8", twoSocket(), resources.TwoSocketLinks(8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMockNode(t, tt.topo)
			got, links, err := GPUs(s, testLogger(t))
			if err != nil {
				t.Fatalf("GPUs: %v", err)
			}
			if len(got) != tt.topo.n {
				t.Fatalf("got %d GPUs, want %d", len(got), tt.topo.n)
			}
			seen := map[string]bool{}
			for i, g := range got {
				md := s.Devices[i].(*dgxa100.Device)
				wantMinor := i
				if tt.topo.minor != nil {
					wantMinor = tt.topo.minor(i)
				}
				want := GPU{
					Index: i, UUID: md.UUID, Model: "Mock NVIDIA A100-SXM4-40GB", Memory: a100Memory,
					PCIBusID: "", NUMANode: tt.topo.numa(i), Minor: wantMinor,
				}
				if g != want {
					t.Errorf("GPU %d = %+v, want %+v", i, g, want)
				}
				if !strings.HasPrefix(g.UUID, "GPU-") || seen[g.UUID] {
					t.Errorf("GPU %d UUID %q not a fresh GPU- UUID", i, g.UUID)
				}
				seen[g.UUID] = true
			}
			if !reflect.DeepEqual(links, tt.want) {
				t.Errorf("links =\n%v\nwant\n%v", links, tt.want)
			}
			if c := len(s.ShutdownCalls()); c != 1 {
				t.Errorf("Shutdown called %d times, want 1", c)
			}
		})
	}
}

func TestGPUsMIG(t *testing.T) {
	s := newMockNode(t, pcieSingleSwitch(4))
	if ret, _ := s.Devices[2].SetMigMode(nvml.DEVICE_MIG_ENABLE); ret != nvml.SUCCESS {
		t.Fatalf("SetMigMode: %v", ret)
	}
	got, _, err := GPUs(s, testLogger(t))
	if err != nil {
		t.Fatalf("GPUs: %v", err)
	}
	for i, g := range got {
		if g.MIG != (i == 2) {
			t.Errorf("GPU %d MIG = %v, want %v", i, g.MIG, i == 2)
		}
	}
}

// TestGPUsDegraded: every optional query fails; the inventory still comes
// back, with the unknowns marked.
func TestGPUsDegraded(t *testing.T) {
	sys := t.TempDir()
	dir := filepath.Join(sys, "bus", "pci", "devices", "0000:3b:00.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "numa_node"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busIDs := []string{"00000000:3B:00.0", "00000000:86:00.0", ""}

	s := dgxa100.NewWithGPUs(gpus.Multiple(3, gpus.A100_SXM4_40GB)...)
	// An old driver without nvmlDeviceGetNumaNodeId: it must not be called.
	s.LookupSymbolFunc = func(string) error { return errors.New("undefined symbol") }
	for i, d := range s.Devices {
		md := d.(*dgxa100.Device)
		md.GetNumaNodeIdFunc = func() (int, nvml.Return) {
			t.Errorf("GetNumaNodeId called although the symbol is missing")
			return 0, nvml.ERROR_FUNCTION_NOT_FOUND
		}
		md.GetP2PStatusFunc = func(nvml.Device, nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			return 0, nvml.ERROR_UNKNOWN
		}
		md.GetTopologyCommonAncestorFunc = func(nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			return 0, nvml.ERROR_NOT_SUPPORTED
		}
		md.GetMinorNumberFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		md.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
		md.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_UNKNOWN }
		md.GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
		bus := busIDs[i]
		md.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k := range bus {
				p.BusId[k] = int8(bus[k])
			}
			return p, nvml.SUCCESS
		}
	}

	got, links, err := readGPUs(s, testLogger(t), sys)
	if err != nil {
		t.Fatalf("GPUs: %v", err)
	}
	want := []GPU{
		{Index: 0, UUID: s.Devices[0].(*dgxa100.Device).UUID, PCIBusID: "0000:3b:00.0", NUMANode: 1, Minor: -1},
		{Index: 1, UUID: s.Devices[1].(*dgxa100.Device).UUID, PCIBusID: "0000:86:00.0", NUMANode: -1, Minor: -1},
		{Index: 2, UUID: s.Devices[2].(*dgxa100.Device).UUID, PCIBusID: "", NUMANode: -1, Minor: -1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GPUs =\n%+v\nwant\n%+v", got, want)
	}
	wantLinks := [][]resources.Link{
		{resources.LinkNone, resources.LinkSystem, resources.LinkSystem},
		{resources.LinkSystem, resources.LinkNone, resources.LinkSystem},
		{resources.LinkSystem, resources.LinkSystem, resources.LinkNone},
	}
	if !reflect.DeepEqual(links, wantLinks) {
		t.Errorf("links = %v, want %v", links, wantLinks)
	}
}

// TestGPUsLostDevice: a GPU without a handle is left out; the others keep
// their NVML index and the matrix matches the survivors.
func TestGPUsLostDevice(t *testing.T) {
	s := newMockNode(t, nvlinkBridgePairs(4))
	byIndex := s.DeviceGetHandleByIndexFunc
	s.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i == 2 {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return byIndex(i)
	}
	got, links, err := GPUs(s, testLogger(t))
	if err != nil {
		t.Fatalf("GPUs: %v", err)
	}
	var idx []int
	for _, g := range got {
		idx = append(idx, g.Index)
	}
	if !reflect.DeepEqual(idx, []int{0, 1, 3}) {
		t.Errorf("indexes = %v, want [0 1 3]", idx)
	}
	wantLinks := [][]resources.Link{
		{resources.LinkNone, resources.LinkNVLink, resources.LinkSystem},
		{resources.LinkNVLink, resources.LinkNone, resources.LinkSystem},
		{resources.LinkSystem, resources.LinkSystem, resources.LinkNone},
	}
	if !reflect.DeepEqual(links, wantLinks) {
		t.Errorf("links = %v, want %v", links, wantLinks)
	}
}

func TestGPUsDeviceCountFails(t *testing.T) {
	s := dgxa100.New()
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	got, links, err := GPUs(s, nil)
	if !errors.Is(err, nvml.ERROR_UNKNOWN) {
		t.Errorf("err = %v, want one wrapping ERROR_UNKNOWN", err)
	}
	if len(got) != 0 || len(links) != 0 {
		t.Errorf("got %d GPUs, %d link rows, want none", len(got), len(links))
	}
	if c := len(s.ShutdownCalls()); c != 1 {
		t.Errorf("Shutdown called %d times after a successful Init, want 1", c)
	}
}

// TestGPUsInitFails: after a failed Init the real library aborts the
// process on any further call. A bare mock with only InitFunc set panics on
// any other call, so passing proves none was made.
func TestGPUsInitFails(t *testing.T) {
	tests := []struct {
		ret        nvml.Return
		wantSource string
		wantLevel  string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "nvml: library not found (no NVIDIA driver)", "level=INFO"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "nvml: NVIDIA kernel driver not loaded", "level=INFO"},
		{nvml.ERROR_NO_PERMISSION, "nvml: init: ERROR_NO_PERMISSION", "level=WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.ret.Error(), func(t *testing.T) {
			lib := &mock.Interface{InitFunc: func() nvml.Return { return tt.ret }}
			got, links, err := GPUs(lib, testLogger(t))
			if !errors.Is(err, tt.ret) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.ret)
			}
			if len(got) != 0 || len(links) != 0 {
				t.Errorf("got %d GPUs, want none", len(got))
			}

			var buf bytes.Buffer
			lib = &mock.Interface{InitFunc: func() nvml.Return { return tt.ret }}
			got, links, source := discoverGPUs(lib, slog.New(slog.NewTextHandler(&buf, nil)))
			if got == nil || links == nil || len(got) != 0 || len(links) != 0 {
				t.Errorf("discoverGPUs = %v, %v; want empty, non-nil", got, links)
			}
			if source != tt.wantSource {
				t.Errorf("source = %q, want %q", source, tt.wantSource)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.wantLevel) {
				t.Errorf("log = %q, want one %s line", buf.String(), tt.wantLevel)
			}
			if len(lib.InitCalls()) != 1 {
				t.Errorf("Init called %d times, want 1", len(lib.InitCalls()))
			}
		})
	}

	// The full mock records calls instead of panicking: nothing after Init.
	s := dgxa100.New()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	if _, _, err := GPUs(s, nil); err == nil {
		t.Fatal("GPUs succeeded after a failed Init")
	}
	if n := len(s.DeviceGetCountCalls()) + len(s.ShutdownCalls()) + len(s.ExtensionsCalls()); n != 0 {
		t.Errorf("%d NVML calls after a failed Init, want 0", n)
	}
}

func TestTopologyLink(t *testing.T) {
	tests := []struct {
		level nvml.GpuTopologyLevel
		want  resources.Link
	}{
		{nvml.TOPOLOGY_INTERNAL, resources.LinkSingleSwitch},
		{nvml.TOPOLOGY_SINGLE, resources.LinkSingleSwitch},
		{nvml.TOPOLOGY_MULTIPLE, resources.LinkMultiSwitch},
		{nvml.TOPOLOGY_HOSTBRIDGE, resources.LinkHostBridge},
		{nvml.TOPOLOGY_NODE, resources.LinkNode},
		{nvml.TOPOLOGY_SYSTEM, resources.LinkSystem},
		{99, resources.LinkSystem},
	}
	for _, tt := range tests {
		if got := TopologyLink(tt.level); got != tt.want {
			t.Errorf("TopologyLink(%d) = %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestNormalizeBusID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00000000:3B:00.0", "0000:3b:00.0"},
		{"0000:3b:00.0", "0000:3b:00.0"},
		{"00010000:AF:00.0", "00010000:af:00.0"}, // a domain that does not fit 4 digits stays whole
		{"", ""},
		{"weird", "weird"},
	}
	for _, tt := range tests {
		if got := normalizeBusID(tt.in); got != tt.want {
			t.Errorf("normalizeBusID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSysfsNUMANode(t *testing.T) {
	sys := t.TempDir()
	write := func(bus, content string) {
		dir := filepath.Join(sys, "bus", "pci", "devices", bus)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "numa_node"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0000:01:00.0", "0\n")
	write("0000:02:00.0", "-1\n")
	write("0000:03:00.0", "garbage")
	tests := []struct {
		bus  string
		want int
	}{{"0000:01:00.0", 0}, {"0000:02:00.0", -1}, {"0000:03:00.0", -1}, {"0000:04:00.0", -1}}
	for _, tt := range tests {
		if got := sysfsNUMANode(sys, tt.bus, testLogger(t)); got != tt.want {
			t.Errorf("sysfsNUMANode(%s) = %d, want %d", tt.bus, got, tt.want)
		}
	}
}
