package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// gpuClass is one virtual node with two GPUs: a node without NVML, as a
// GPU node whose driver is missing would be.
const gpuClass = `class "gpu" {
  count  = 1
  cpus   = 8
  memory = "32GiB"
  gpu {
    model  = "NVIDIA L4"
    memory = "24GiB"
    count  = 2
  }
}
`

// TestGPUUsageWithoutNVML: a GPU job on a node where nothing can measure
// its GPUs (a virtual agent: no NVML) is accounted with its GPU ids and
// GPU-seconds, but its record carries no utilisation or memory figures
// (not zeros), and `hpcsub eff` says they were not measured and why.
func TestGPUUsageWithoutNVML(t *testing.T) {
	c := newCluster(t)
	data := filepath.Join(filepath.Dir(c.dataDir), "server")
	startProc(t, "server", "--data-dir", data, "--listen", "unix://"+c.sock, "--listen", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)))
	join := filepath.Join(data, "agent-join")
	waitFor(t, 60*time.Second, func() bool { _, err := os.Stat(join); return err == nil })
	class := c.writeJob("gpu-class.hcl", gpuClass)
	startProc(t, "agent", "--join", join, "--data-dir", filepath.Join(filepath.Dir(c.dataDir), "agent"),
		"--virtual", "1", "--node-class", class, "--gpu-sample-interval", "100ms")
	waitFor(t, 60*time.Second, func() bool {
		out, _, code := c.hpcsub("nodes", "--json")
		return code == 0 && strings.Contains(out, `"IDLE"`)
	})

	id := c.submit(c.writeJob("gpu.hcl", `job "train" {
  walltime = "1m"
  resources {
    gpu { count = 2 }
  }
  task {
    command = "/bin/true"
    env     = { HPC_VIRTUAL_RUNTIME = "1" }
  }
}`), "--wait")

	out, errOut, code := c.hpcsub("history", "--json")
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, errOut)
	}
	var jobs []api.Job
	mustJSON(t, out, &jobs)
	if len(jobs) != 1 || jobs[0].ID != id || len(jobs[0].Runs) != 1 {
		t.Fatalf("history: %s", out)
	}
	r := jobs[0].Runs[0]
	if r.Usage.GPUSeconds <= 0 || len(r.GPUs["gpu-0001"]) != 2 || r.GPUUsage != nil {
		t.Errorf("run %+v: want GPU-seconds and 2 GPU ids, and no GPU usage figures", r)
	}
	if strings.Contains(out, "gpu_usage") || strings.Contains(out, "utilization") {
		t.Errorf("history --json of an unmeasured run carries GPU figures:\n%s", out)
	}

	out, _, code = c.hpcsub("eff", fmt.Sprint(id))
	if code != 0 || !strings.Contains(out, "gpu utilisation:") || !strings.Contains(out, "not measured (no NVML") ||
		!strings.Contains(out, "gpu memory:") {
		t.Errorf("eff: exit %d:\n%s", code, out)
	}
	out, _, _ = c.hpcsub("eff", "--json", fmt.Sprint(id))
	var ef map[string]json.RawMessage
	mustJSON(t, out, &ef)
	if _, ok := ef["gpu"]; ok || ef["gpu_hours"] == nil {
		t.Errorf("eff --json: %s; want gpu_hours and no gpu figures", out)
	}
}

// TestGPUSampleIntervalFlag: hpcd dev and hpcd agent refuse a sampling
// interval outside 100ms..1h with one line and exit 2, before starting.
func TestGPUSampleIntervalFlag(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--data-dir", filepath.Join(t.TempDir(), "d"), "--gpu-sample-interval", "1ms"},
		{"agent", "--join", "/nonexistent", "--gpu-sample-interval", "2h"},
	} {
		out, code := runHpcd(t, args...)
		if code != 2 || !strings.Contains(out, "--gpu-sample-interval") || !strings.Contains(out, "use 100ms to 1h") ||
			strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("hpcd %v: exit %d, output %q", args, code, out)
		}
	}
}

// runHpcd runs hpcd to its end and returns its output and exit code.
func runHpcd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "hpcd"), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run hpcd %v: %v", args, err)
	}
	return string(out), 0
}
