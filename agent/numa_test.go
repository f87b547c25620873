package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

func TestNUMANodes(t *testing.T) {
	root := t.TempDir()
	for node, list := range map[string]string{"node0": "0-3,8\n", "node1": "4-7,9-10\n"} {
		d := filepath.Join(root, "devices/system/node", node)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cpulist"), []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := NUMANodes(root, []int{0, 1, 2, 3, 4, 5, 9})
	want := []api.NUMANode{{ID: 0, CPUs: []int{0, 1, 2, 3}}, {ID: 1, CPUs: []int{4, 5, 9}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := NUMANodes(t.TempDir(), []int{0}); got != nil {
		t.Errorf("without sysfs NUMA: %+v", got)
	}
}
