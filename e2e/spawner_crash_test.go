package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// spawnerPID is the pid of the node's spawner in a dev cluster.
func (c *cluster) spawnerPID(t *testing.T) int {
	t.Helper()
	var id struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(c.dataDir, "exec", "spawner", "pid"))
	if err != nil {
		t.Fatalf("no spawner: %v", err)
	}
	if err := json.Unmarshal(b, &id); err != nil || id.PID <= 0 {
		t.Fatalf("spawner pid file %q: %v", b, err)
	}
	return id.PID
}

func startsOf(j api.Job) int {
	n := 0
	for _, tr := range j.History {
		if tr.State == api.StateRunning {
			n++
		}
	}
	return n
}

// TestSpawnerCrashes: kill -9 of hpcd, of the node's spawner, and of both,
// while a job runs. A job that ends while hpcd is down is COMPLETED, run
// once; a job the spawner's death killed is the host's failure, never
// FAILED to its user: NODE_FAIL, or with requeue = true, run again and
// COMPLETED.
func TestSpawnerCrashes(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		name             string
		hpcd, spawner    bool
		waitEndWhileDown bool
		requeue          bool
		want             api.JobState
		starts           int
	}{
		{"hpcd, the job ends meanwhile", true, false, true, false, api.StateCompleted, 1},
		{"spawner", false, true, false, false, api.StateNodeFail, 1},
		{"spawner, requeue", false, true, false, true, api.StateCompleted, 2},
		{"hpcd and spawner", true, true, false, false, api.StateNodeFail, 1},
		{"hpcd and spawner, requeue", true, true, false, true, api.StateCompleted, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(c.work, strings.NewReplacer(" ", "_", ",", "").Replace(tc.name)+".runs")
			job := c.writeJob("crash.hcl", fmt.Sprintf(`job "crash" {
  walltime = "1m"
  requeue  = %v
  task { script = "echo run >> %s; sleep 1.5" }
}`, tc.requeue, out))
			id := c.submit(job)
			c.waitState(id, 30*time.Second, api.StateRunning)
			waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(out); return err == nil })
			if tc.spawner {
				pid := c.spawnerPID(t)
				if tc.hpcd {
					c.kill9()
				}
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			} else if tc.hpcd {
				c.kill9()
			}
			if tc.waitEndWhileDown {
				time.Sleep(2500 * time.Millisecond)
			}
			if tc.hpcd {
				c.start()
			}
			j := c.waitState(id, 60*time.Second, api.StateCompleted, api.StateFailed, api.StateNodeFail, api.StateCancelled)
			if j.State != tc.want {
				t.Errorf("job ended %s (%s), want %s", j.State, j.Reason, tc.want)
			}
			if n := startsOf(j); n != tc.starts {
				t.Errorf("job started %d times, want %d: %+v", n, tc.starts, j.History)
			}
			b, _ := os.ReadFile(out)
			if got := strings.Count(string(b), "run"); got != tc.starts {
				t.Errorf("job ran %d times, want %d", got, tc.starts)
			}
		})
	}
}
