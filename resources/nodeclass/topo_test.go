package nodeclass

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/resources"
)

// dgxA100Topo is `nvidia-smi topo -m` of an NVIDIA DGX A100 as the driver
// prints it: tabs, " X " cells, ten mlx5 NIC columns and rows, CPU and NUMA
// affinity columns, the legend. The GPU part follows the DGX A100's
// documented layout (all NV12 through NVSwitch; GPU pairs on NUMA 3, 1, 7, 5).
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseTopology(t *testing.T) {
	const (
		S  = resources.LinkSystem
		N  = resources.LinkNode
		HB = resources.LinkHostBridge
		MS = resources.LinkMultiSwitch
		SS = resources.LinkSingleSwitch
		NV = resources.LinkNVLink
		X  = resources.LinkNone
	)
	dgx := readTestdata(t, "dgx-a100-topo.txt")
	pcie := readTestdata(t, "pcie4-topo.txt")
	pcieLinks := [][]resources.Link{{X, SS, S, S}, {SS, X, S, S}, {S, S, X, HB}, {S, S, HB, X}}
	tests := []struct {
		name  string
		text  string
		links [][]resources.Link
		numa  []int
	}{
		{"DGX A100 as printed", dgx, resources.NVSwitchLinks(8), []int{3, 3, 1, 1, 7, 7, 5, 5}},
		{"PCIe 4-GPU with NIC and GPU NUMA ID", pcie, pcieLinks, []int{0, 0, 1, 1}},
		{"tabs turned into spaces", strings.ReplaceAll(pcie, "\t", "   "), pcieLinks, []int{0, 0, 1, 1}},
		{"indented paste", "    " + strings.ReplaceAll(dgx, "\n", "\n    "), resources.NVSwitchLinks(8), []int{3, 3, 1, 1, 7, 7, 5, 5}},
		{"rows only, no header", "GPU0 X PXB\nGPU1 PXB X\n", [][]resources.Link{{X, MS}, {MS, X}}, []int{-1, -1}},
		{"old driver SOC and NODE", "\tGPU0\tGPU1\tGPU2\tCPU Affinity\nGPU0\t X \tSOC\tNODE\t0-7\nGPU1\tSOC\t X \tSOC\t8-15\nGPU2\tNODE\tSOC\t X \t0-7\n",
			[][]resources.Link{{X, S, N}, {S, X, S}, {N, S, X}}, []int{-1, -1, -1}},
		{"one GPU", "\tGPU0\tCPU Affinity\tNUMA Affinity\nGPU0\t X \t0-63\tN/A\n", [][]resources.Link{{X}}, []int{-1}},
		{"NV1 to NV18 are NVLink", "GPU0 X NV1 NV18\nGPU1 NV1 X NV4\nGPU2 NV18 NV4 X\n",
			[][]resources.Link{{X, NV, NV}, {NV, X, NV}, {NV, NV, X}}, []int{-1, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseTopology(tt.text)
			if err != nil {
				t.Fatalf("ParseTopology: %v", err)
			}
			if !reflect.DeepEqual(m.Links, tt.links) {
				t.Errorf("links = %v, want %v", m.Links, tt.links)
			}
			if !reflect.DeepEqual(m.NUMA, tt.numa) {
				t.Errorf("NUMA = %v, want %v", m.NUMA, tt.numa)
			}
		})
	}
}

func TestParseTopologyErrors(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		line, col int
		want      string
	}{
		{"empty", "", 0, 0, "no GPU rows"},
		{"legend only", "Legend:\n  X    = Self\n", 0, 0, "no GPU rows"},
		{"unknown cell", "\tGPU0\tGPU1\nGPU0\t X \tPCI\nGPU1\tPIX\t X \n", 1, 9, `GPU0 to GPU1: unknown link "PCI": want X, NV<n>, PIX, PXB, PHB, NODE or SYS`},
		{"NV without count", "GPU0 X NV\nGPU1 NV X\n", 0, 7, `unknown link "NV"`},
		{"diagonal not X", "GPU0 PIX PIX\nGPU1 PIX X\n", 0, 5, `GPU0 to itself must be X, not "PIX"`},
		{"X off the diagonal", "GPU0 X X\nGPU1 X X\n", 0, 7, "X marks a GPU's own cell only"},
		{"asymmetric", "GPU0 X PIX\nGPU1 PXB X\n", 1, 5, "GPU1 to GPU0 is PXB but GPU0 to GPU1 is PIX"},
		{"rows out of order", "GPU0 X PIX\nGPU2 PIX X\n", 1, 0, "row GPU2 out of order: expected GPU1"},
		{"short row", "\tGPU0\tGPU1\nGPU0\t X \tPIX\nGPU1\tPIX\n", 2, 5, "row GPU1 has 1 cells, want at least 2"},
		{"header with fewer GPUs than rows", "\tGPU0\tCPU Affinity\nGPU0 X PIX\nGPU1 PIX X\n", 0, 6, "header names 1 GPU columns but there are 2 GPU rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTopology(tt.text)
			te, ok := err.(*topoError)
			if !ok {
				t.Fatalf("err = %v (%T), want a *topoError", err, err)
			}
			if !strings.Contains(te.Msg, tt.want) {
				t.Errorf("message %q does not contain %q", te.Msg, tt.want)
			}
			if te.Line != tt.line || te.Col != tt.col {
				t.Errorf("at %d:%d, want %d:%d", te.Line, te.Col, tt.line, tt.col)
			}
		})
	}
}
