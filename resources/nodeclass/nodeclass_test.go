package nodeclass

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/resources"
)

const gib = int64(1) << 30

func TestExampleFile(t *testing.T) {
	f, err := ReadFile("../../docs/examples/cluster.hcl")
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	nodes := f.Nodes()
	if len(nodes) != 1000 {
		t.Fatalf("%d nodes, want 1000", len(nodes))
	}
	byClass := map[string]int{}
	for _, n := range nodes {
		byClass[n.Class]++
	}
	if want := map[string]int{"dgx-a100": 100, "l4": 300, "cpu": 600}; !reflect.DeepEqual(byClass, want) {
		t.Errorf("nodes by class = %v, want %v", byClass, want)
	}
	dgx := nodes[0]
	if dgx.Name != "dgx-a100-0001" || nodes[99].Name != "dgx-a100-0100" || nodes[100].Name != "l4-0001" || nodes[999].Name != "cpu-0600" {
		t.Errorf("names %s %s %s %s, want dgx-a100-0001 dgx-a100-0100 l4-0001 cpu-0600", dgx.Name, nodes[99].Name, nodes[100].Name, nodes[999].Name)
	}
	if dgx.CPUs != 256 || dgx.Memory != 1024*gib || len(dgx.GPUs) != 8 {
		t.Errorf("dgx node = %d CPUs, %d bytes, %d GPUs; want 256, 1TiB, 8", dgx.CPUs, dgx.Memory, len(dgx.GPUs))
	}
	if !reflect.DeepEqual(dgx.Links, resources.NVSwitchLinks(8)) {
		t.Errorf("dgx links = %v, want all NVLink", dgx.Links)
	}
	if g := dgx.GPUs[2]; g != (GPU{Index: 2, Model: "NVIDIA A100-SXM4-80GB", Memory: 80 * gib, NUMANode: 1}) {
		t.Errorf("dgx GPU2 = %+v", g)
	}
	l4 := nodes[100]
	if l4.Links[0][1] != resources.LinkSingleSwitch || l4.Links[1][2] != resources.LinkSystem || l4.Links[2][3] != resources.LinkHostBridge {
		t.Errorf("l4 links = %v", l4.Links)
	}
	cpu := nodes[999]
	if cpu.GPUs != nil || cpu.Links != nil || !reflect.DeepEqual(cpu.Features, []string{"cpu"}) {
		t.Errorf("cpu node = %+v", cpu)
	}
	// Nodes share nothing: changing one leaves its class mates alone.
	nodes[0].Links[0][1] = resources.LinkSystem
	nodes[0].Features[0] = "changed"
	if nodes[1].Links[0][1] != resources.LinkNVLink || nodes[1].Features[0] != "a100" {
		t.Error("nodes of one class share slices")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Class
	}{
		{"cpu only, size as bytes", `class "c" {
  count = 2
  cpus = 4
  memory = 1073741824
}`, []Class{{Name: "c", Count: 2, CPUs: 4, Memory: gib}}},
		{"gpu count without topology", `class "g" {
  count = 1
  cpus = 8
  memory = "16GiB"
  features = ["x", "y"]
  gpu {
    model = "NVIDIA T4"
    memory = "16GiB"
    count = 2
  }
}`, []Class{{Name: "g", Count: 1, CPUs: 8, Memory: 16 * gib, Features: []string{"x", "y"},
			GPU: &GPUs{Model: "NVIDIA T4", Memory: 16 * gib, Count: 2}}}},
		{"count read from a quoted topology", `class "p" {
  count = 1
  cpus = 8
  memory = "16GiB"
  gpu {
    model = "M"
    memory = "1GiB"
    topology = "GPU0 X NV2\nGPU1 NV2 X\n"
  }
}`, []Class{{Name: "p", Count: 1, CPUs: 8, Memory: 16 * gib,
			GPU: &GPUs{Model: "M", Memory: gib, Count: 2, Links: resources.NVSwitchLinks(2), NUMA: []int{-1, -1}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("c.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(f.Classes, tt.want) {
				t.Errorf("classes = %+v\nwant %+v", f.Classes, tt.want)
			}
		})
	}
}

func TestNodeNamesWiden(t *testing.T) {
	f := &File{Classes: []Class{{Name: "big", Count: 12345, CPUs: 1, Memory: 1}}}
	nodes := f.Nodes()
	if nodes[0].Name != "big-00001" || nodes[12344].Name != "big-12345" {
		t.Errorf("names %s .. %s, want big-00001 .. big-12345", nodes[0].Name, nodes[12344].Name)
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "  count = 1\n  cpus = 4\n  memory = \"1GiB\"\n"
	tests := []struct {
		name string
		src  string
		want []string // every line of the error, in order
	}{
		{"syntax", `class "a" {`, []string{"c.hcl:1:11: Unclosed configuration block"}},
		{"no classes", "# nothing\n", []string{"c.hcl:1:1: No classes"}},
		{"unknown attribute", "class \"a\" {\n" + ok + "  disks = 2\n}\n", []string{`c.hcl:5:3: Unsupported argument: An argument named "disks" is not expected here.`}},
		{"missing cpus", "class \"a\" {\n  count = 1\n  memory = \"1GiB\"\n}\n", []string{`c.hcl:1:11: Missing required argument: The argument "cpus" is required, but no definition was found.`}},
		{"bad numbers", "class \"a\" {\n  count = 0\n  cpus = 5000\n  memory = \"0\"\n}\n", []string{
			"c.hcl:2:11: Invalid count: count is 0; a class has 1 to 100000 nodes.",
			"c.hcl:3:10: Invalid cpus: cpus is 5000; a node has 1 to 4096 CPUs.",
			`c.hcl:4:12: Invalid memory: size "0" must be more than zero`}},
		{"fraction of a CPU", "class \"a\" {\n  count = 1\n  cpus = 1.5\n  memory = \"1GiB\"\n}\n", []string{"c.hcl:3:10: Unsuitable value type"}},
		{"memory unit", "class \"a\" {\n  count = 1\n  cpus = 1\n  memory = \"1GB\"\n}\n", []string{`c.hcl:4:12: Invalid memory: unknown unit "GB"`}},
		{"bad class name", "class \"a_b\" {\n" + ok + "}\n", []string{"c.hcl:1:7: Invalid class name"}},
		{"duplicate class", "class \"a\" {\n" + ok + "}\nclass \"a\" {\n" + ok + "}\n", []string{`c.hcl:6:7: Duplicate class: Class "a" is already defined at c.hcl:1,7-10`}},
		{"too many nodes", "class \"a\" {\n  count = 60000\n  cpus = 1\n  memory = 1\n}\nclass \"b\" {\n  count = 60000\n  cpus = 1\n  memory = 1\n}\n",
			[]string{"c.hcl:1:1: Too many nodes: The classes add up to 120000 nodes; at most 100000 are allowed."}},
		{"bad feature", "class \"a\" {\n" + ok + "  features = [\"a b\"]\n}\n", []string{`c.hcl:5:14: Invalid feature: Feature "a b"`}},
		{"duplicate feature", "class \"a\" {\n" + ok + "  features = [\"a\", \"a\"]\n}\n", []string{`c.hcl:5:14: Duplicate feature`}},
		{"two gpu blocks", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    count = 1\n  }\n  gpu {\n    model = \"m\"\n    memory = 1\n    count = 1\n  }\n}\n",
			[]string{"c.hcl:10:3: Duplicate gpu block"}},
		{"gpu without count or topology", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n  }\n}\n", []string{"c.hcl:5:7: Missing GPU count"}},
		{"gpu count zero", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    count = 0\n  }\n}\n", []string{"c.hcl:8:13: Invalid GPU count"}},
		{"empty gpu model", "class \"a\" {\n" + ok + "  gpu {\n    model = \" \"\n    memory = 1\n    count = 1\n  }\n}\n", []string{"c.hcl:6:13: Missing GPU model"}},
		{"count disagrees with topology", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    count = 4\n    topology = \"GPU0 X PIX\\nGPU1 PIX X\"\n  }\n}\n",
			[]string{"c.hcl:8:13: GPU count does not match topology: count is 4 but the topology has 2 GPU rows."}},
		{"bad header in a heredoc points at the header", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    topology = <<EOT\n\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tPIX\t0-3\nGPU1\tPIX\t X \t0-3\nGPU2\tPIX\tPHB\t X \nEOT\n  }\n}\n",
			[]string{"c.hcl:9:12: Invalid GPU topology: header names 2 GPU columns but there are 3 GPU rows; the header must list GPU0 to GPU2 first"}},
		{"asymmetric heredoc", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    topology = <<-EOT\n      GPU0  X    NV4\n      GPU1  NV2  X\n    EOT\n  }\n}\n",
			[]string{"c.hcl:10:13: Invalid GPU topology: GPU1 to GPU0 is NV2 but GPU0 to GPU1 is NV4; the matrix must be symmetric"}},
		{"a stray row deep in a heredoc", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    topology = <<EOT\nGPU0 X PIX\nGPU1 PIX X\nGPU0 X PIX\nEOT\n  }\n}\n",
			[]string{"c.hcl:11:1: Invalid GPU topology: row GPU0 out of order: expected GPU2"}},
		{"a quoted topology points at the cell", "class \"a\" {\n" + ok + "  gpu {\n    model = \"m\"\n    memory = 1\n    topology = \"GPU0 X Q\\nGPU1 Q X\"\n  }\n}\n",
			[]string{`c.hcl:8:24: Invalid GPU topology: GPU0 to GPU1: unknown link "Q"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("c.hcl", []byte(tt.src))
			if f != nil {
				t.Errorf("got a file alongside the error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			lines := e.Lines()
			if len(lines) != len(tt.want) {
				t.Fatalf("%d diagnostics, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q\nwant prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestFileTooLarge(t *testing.T) {
	_, err := Parse("c.hcl", make([]byte, MaxFileSize+1))
	if err == nil || !strings.Contains(err.Error(), "c.hcl:1:1: Node-class file too large") {
		t.Fatalf("err = %v", err)
	}
}
