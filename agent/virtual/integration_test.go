package virtual_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// TestVirtualClusterRunsJobs drives a real server with 10 virtual nodes of
// the example's three classes through the API: jobs land on the class
// their request needs, hold their resources for HPC_VIRTUAL_RUNTIME and end
// as the virtual run says.
func TestVirtualClusterRunsJobs(t *testing.T) {
	c := startCluster(t, "../../docs/examples/cluster.hcl", 10, nil)
	nodes, err := c.client.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 10 || nodes[0].Isolation != "virtual" {
		t.Fatalf("nodes = %+v", nodes)
	}
	tests := []struct {
		name      string
		src       string
		state     api.JobState
		code      int
		nodePfx   string
		gpus      int
		minElapse time.Duration
	}{
		{"8 NVLink GPUs land on the DGX", virtualJob("nv8", "0.2", `  resources {
    gpu {
      count = 8
      link  = "nvlink"
    }
  }`), api.StateCompleted, 0, "dgx-a100-", 8, 200 * time.Millisecond},
		{"an L4 by model", virtualJob("l4", "0", `  resources {
    gpu { model = "L4" }
  }`), api.StateCompleted, 0, "l4-", 1, 0},
		{"a feature only CPU nodes have", virtualJob("cpu", "0.1", `  features = ["cpu"]`), api.StateCompleted, 0, "cpu-", 0, 100 * time.Millisecond},
		{"a runtime past the walltime times out", strings.Replace(virtualJob("slow", "5", ""), `"1m"`, `"1s"`, 1), api.StateTimeout, 0, "", 0, time.Second},
		{"an exit code fails the job", strings.Replace(virtualJob("exit", "0", ""), `HPC_VIRTUAL_RUNTIME = "0"`, `HPC_VIRTUAL_RUNTIME = "0", HPC_VIRTUAL_EXIT = "3"`, 1), api.StateFailed, 3, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := c.submit(tt.src)[0]
			j := c.wait(id)
			if j.State != tt.state || j.ExitCode == nil || *j.ExitCode != tt.code {
				t.Fatalf("job ended %s (exit %v): %s; want %s exit %d", j.State, j.ExitCode, j.Reason, tt.state, tt.code)
			}
			if len(j.Nodes) != 1 || !strings.HasPrefix(j.Nodes[0], tt.nodePfx) || len(j.GPUs[j.Nodes[0]]) != tt.gpus {
				t.Errorf("ran on %v with GPUs %v; want one %s* node and %d GPUs", j.Nodes, j.GPUs, tt.nodePfx, tt.gpus)
			}
			if el := j.EndTime.Sub(*j.StartTime); el < tt.minElapse {
				t.Errorf("held its resources %v, want at least %v", el, tt.minElapse)
			}
		})
	}
	// A job holds its resources while it runs: two 8-GPU jobs on one DGX
	// (the only one of ten nodes) run one after the other.
	a := c.submit(virtualJob("a", "0.3", "  resources {\n    gpu { count = 8 }\n  }"))[0]
	b := c.submit(virtualJob("b", "0.3", "  resources {\n    gpu { count = 8 }\n  }"))[0]
	ja, jb := c.wait(a), c.wait(b)
	if ja.State != api.StateCompleted || jb.State != api.StateCompleted {
		t.Fatalf("states %s, %s", ja.State, jb.State)
	}
	if jb.StartTime.Before(*ja.EndTime) {
		t.Errorf("job b started at %v, before job a ended at %v: the GPUs were not held", jb.StartTime, ja.EndTime)
	}
	// A cancel ends a long virtual run at once.
	long := c.submit(virtualJob("long", "50", ""))[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := c.client.Job(context.Background(), long)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == api.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s", long, j.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.client.Cancel(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	if j := c.wait(long); j.State != api.StateCancelled {
		t.Errorf("cancelled job ended %s: %s", j.State, j.Reason)
	}
}
