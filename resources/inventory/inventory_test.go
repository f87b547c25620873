package inventory

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/resources"
)

// TestDiscoverHost reads this machine for real. It must pass on a CPU-only
// host (no driver: zero GPUs and the reason) and on a GPU host (then it
// logs what it found).
func TestDiscoverHost(t *testing.T) {
	inv, err := Discover(context.Background(), testLogger(t))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	t.Logf("host %q kernel %q os %q: %d CPUs %v, memory %s, GPU source %q",
		inv.Hostname, inv.Kernel, inv.OS, inv.CPUs, inv.CPUIDs, resources.FormatBytes(inv.Memory), inv.GPUSource)

	if inv.CPUs <= 0 || inv.CPUs != len(inv.CPUIDs) || !slices.IsSorted(inv.CPUIDs) {
		t.Errorf("CPUs = %d, CPUIDs = %v: want a positive count of sorted ids", inv.CPUs, inv.CPUIDs)
	}
	if inv.Memory <= 0 {
		t.Errorf("Memory = %d, want > 0", inv.Memory)
	}
	if inv.Hostname == "" {
		t.Errorf("Hostname empty")
	}

	if inv.GPUSource == GPUSourceNVML {
		for _, g := range inv.GPUs {
			t.Logf("GPU %d %s %s %s bus=%s numa=%d minor=%d mig=%v",
				g.Index, g.UUID, g.Model, resources.FormatBytes(g.Memory), g.PCIBusID, g.NUMANode, g.Minor, g.MIG)
			if g.UUID == "" || g.Model == "" || g.Memory <= 0 {
				t.Errorf("GPU %d incomplete: %+v", g.Index, g)
			}
		}
		for i, row := range inv.Links {
			t.Logf("links[%d] = %v", i, row)
		}
	} else {
		if len(inv.GPUs) != 0 {
			t.Errorf("%d GPUs with source %q", len(inv.GPUs), inv.GPUSource)
		}
		if !strings.HasPrefix(inv.GPUSource, "nvml: ") {
			t.Errorf("GPUSource = %q, want the reason there are no GPUs", inv.GPUSource)
		}
	}
	if len(inv.Links) != len(inv.GPUs) {
		t.Errorf("%d link rows for %d GPUs", len(inv.Links), len(inv.GPUs))
	}
	for i, row := range inv.Links {
		if len(row) != len(inv.GPUs) {
			t.Errorf("links row %d has %d entries for %d GPUs", i, len(row), len(inv.GPUs))
		}
		if i < len(row) && row[i] != resources.LinkNone {
			t.Errorf("links[%d][%d] = %v, want none", i, i, row[i])
		}
	}

	// The inventory travels to the server as JSON: it must survive it.
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back Inventory
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, inv) {
		t.Errorf("JSON round trip changed the inventory:\n%+v\n%+v", back, inv)
	}
}

func TestDiscoverNilLogger(t *testing.T) {
	if _, err := Discover(context.Background(), nil); err != nil {
		t.Fatalf("Discover: %v", err)
	}
}

func TestDiscoverCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Discover(ctx, nil); err == nil {
		t.Fatal("Discover succeeded with a cancelled context")
	}
}

func TestCPUSetIDs(t *testing.T) {
	tests := []struct {
		name string
		set  []int
	}{
		{"first", []int{0}},
		{"sparse", []int{1, 3, 64, 65, 1023}},
		{"contiguous", []int{0, 1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tt := range tests {
		var s unix.CPUSet
		for _, c := range tt.set {
			s.Set(c)
		}
		if got := cpuSetIDs(&s); !reflect.DeepEqual(got, tt.set) {
			t.Errorf("%s: cpuSetIDs = %v, want %v", tt.name, got, tt.set)
		}
	}
}
