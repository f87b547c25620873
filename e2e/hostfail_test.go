package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Found as: a `kill -9` of a job's shim ended the job FAILED even with
// requeue = true. Now it is requeued, without using a restart, and runs
// again.
func TestShimKilledRequeues(t *testing.T) {
	c := startCluster(t)
	marker := filepath.Join(c.work, "runs")
	id := c.submit(c.writeJob("requeue.hcl", fmt.Sprintf(`job "requeue" {
  walltime = "1m"
  requeue  = true
  task {
    script = <<-EOT
      echo run >> %s
      if [ "$(wc -l < %s)" = 1 ]; then sleep 300; fi
    EOT
  }
}`, marker, marker)))
	c.waitState(id, 30*time.Second, api.StateRunning)
	var shim struct {
		PID int `json:"pid"`
	}
	// RUNNING is committed before the launch: wait until the job's code
	// has run, or the kill below hits a launch (a different host failure,
	// after which the first real run sleeps out its walltime).
	waitFor(t, 30*time.Second, func() bool {
		b, err := os.ReadFile(marker)
		return err == nil && len(b) > 0
	})
	// The job's supervisor: its shim, or the node's spawner.
	pidFiles := []string{filepath.Join(c.dataDir, "exec", fmt.Sprint(id), "shim.pid"), filepath.Join(c.dataDir, "exec", "spawner", "pid")}
	waitFor(t, 10*time.Second, func() bool {
		for _, pidFile := range pidFiles {
			b, err := os.ReadFile(pidFile)
			if err == nil && json.Unmarshal(b, &shim) == nil && shim.PID > 0 {
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(shim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	j := c.waitState(id, 60*time.Second, api.StateCompleted, api.StateFailed, api.StateNodeFail)
	if j.State != api.StateCompleted || j.Restarts != 0 {
		t.Fatalf("job %s after %d restarts, want requeued (no restart used) and COMPLETED", j.State, j.Restarts)
	}
	var hist []api.JobState
	for _, tr := range j.History {
		hist = append(hist, tr.State)
	}
	if !slices.Contains(hist, api.StateRequeued) {
		t.Fatalf("history %v has no REQUEUED", hist)
	}
}

// Found as: "could not start on vm: write .../exec/7/job.sh: no space left
// on device" ended jobs FAILED, no requeue, node not drained; at
// scheduler speed one sick node turned the queue into failed jobs. Now
// such jobs wait in the queue, and after N failures in a row the node is
// drained with the reason; once it is fixed and resumed they run.
func TestFullNodeDiskRequeuesAndDrains(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	c := newCluster(t, "--drain-after-host-failures", "2")
	state := filepath.Join(c.dataDir, "exec")
	if err := os.MkdirAll(state, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=1m,mode=0711"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(state, syscall.MNT_DETACH) })
	c.start()
	t.Cleanup(c.shutdown)
	filler := filepath.Join(state, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 4096); err == nil; {
		_, err = f.Write(buf)
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill the node's disk: %v", err)
	}

	file := c.writeJob("full.hcl", `job "full" {
  walltime = "1m"
  requeue  = true
  task { script = "echo done" }
}`)
	ids := []uint64{c.submit(file), c.submit(file), c.submit(file)}
	var node api.Node
	waitFor(t, 30*time.Second, func() bool {
		node = c.nodes()[0]
		return node.State == api.NodeDrained
	})
	if !strings.Contains(node.Reason, "2 host failures in a row") || !strings.Contains(node.Reason, "no space left on device") {
		t.Fatalf("node drained with reason %q, want the count and the cause", node.Reason)
	}
	for _, id := range ids {
		j := c.show(id)
		if j.State != api.StatePending || j.Restarts != 0 || j.ExitCode != nil {
			t.Fatalf("job %d %s restarts %d exit %v: a full node disk must not end or charge the job", id, j.State, j.Restarts, j.ExitCode)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.hpcsub("node", "resume", node.Name); code != 0 {
		t.Fatalf("resume: %s", errOut)
	}
	for _, id := range ids {
		if j := c.waitState(id, 60*time.Second, api.StateCompleted, api.StateFailed, api.StateNodeFail); j.State != api.StateCompleted {
			t.Fatalf("job %d ended %s once the node was fixed", id, j.State)
		}
	}
}
