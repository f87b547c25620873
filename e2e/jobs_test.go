package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

func TestOutcomes(t *testing.T) {
	c := startCluster(t)
	tests := []struct {
		name     string
		src      string
		state    api.JobState
		exitCode int // hpcsub submit --wait's exit status
		check    func(t *testing.T, j api.Job)
	}{
		{
			name: "hello writes its output files",
			src: `job "hello" {
  walltime = "1m"
  task {
    script = <<-EOT
      echo "hello from $HPC_JOB_ID on $HPC_NODELIST"
      echo "to stderr" >&2
    EOT
  }
  error = "hpc-%j.err"
}`,
			state: api.StateCompleted,
			check: func(t *testing.T, j api.Job) {
				out, err := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", j.ID)))
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("hello from %d on %s\n", j.ID, j.Nodes[0])
				if string(out) != want {
					t.Errorf("stdout file = %q, want %q", out, want)
				}
				errOut, err := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.err", j.ID)))
				if err != nil || string(errOut) != "to stderr\n" {
					t.Errorf("stderr file = %q, %v", errOut, err)
				}
			},
		},
		{
			name: "exit 3 fails with code 3",
			src: `job "three" {
  walltime = "1m"
  task { script = "exit 3" }
}`,
			state:    api.StateFailed,
			exitCode: 3,
			check: func(t *testing.T, j api.Job) {
				if j.ExitCode == nil || *j.ExitCode != 3 {
					t.Errorf("exit_code = %v, want 3", j.ExitCode)
				}
			},
		},
		{
			name: "over its memory limit ends OUT_OF_MEMORY",
			src: `job "hog" {
  walltime = "1m"
  resources { memory = "64MiB" }
  task { script = "head -c 400M /dev/zero | tail" }
}`,
			state:    api.StateOutOfMemory,
			exitCode: -1,
		},
		{
			name: "past its walltime ends TIMEOUT",
			src: `job "slow" {
  walltime = "2s"
  task {
    command = "sleep"
    args    = ["60"]
  }
}`,
			state:    api.StateTimeout,
			exitCode: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := c.writeJob(strings.ReplaceAll(tt.name, " ", "_")+".hcl", tt.src)
			out, errOut, code := c.hpcsub("submit", "--wait", file)
			var id uint64
			if _, err := fmt.Sscan(strings.TrimSpace(out), &id); err != nil {
				t.Fatalf("submit --wait printed %q (stderr %q), want the job id", out, errOut)
			}
			if tt.exitCode >= 0 && code != tt.exitCode {
				t.Errorf("submit --wait exited %d, want %d (stderr %q)", code, tt.exitCode, errOut)
			}
			if tt.exitCode < 0 && code == 0 {
				t.Errorf("submit --wait exited 0 for a %s job", tt.state)
			}
			j := c.show(id)
			if j.State != tt.state {
				t.Fatalf("state = %s (%s), want %s", j.State, j.Reason, tt.state)
			}
			if tt.check != nil {
				tt.check(t, j)
			}
		})
	}
}

func TestCancelKillsTheWholeTree(t *testing.T) {
	c := startCluster(t)
	// The marker makes this job's processes findable; one of them leaves
	// the process group, as daemons and careless scripts do.
	marker := fmt.Sprintf("%d", 4000+time.Now().UnixNano()%1000)
	file := c.writeJob("tree.hcl", `job "tree" {
  walltime = "10m"
  task {
    script = <<-EOT
      setsid sleep `+marker+` &
      sleep `+marker+` &
      sleep `+marker+`
    EOT
  }
}`)
	id := c.submit(file)
	c.waitState(id, 30*time.Second, api.StateRunning)
	waitFor(t, 10*time.Second, func() bool { return countProcs("sleep "+marker) == 3 })

	if _, errOut, code := c.hpcsub("cancel", fmt.Sprint(id)); code != 0 {
		t.Fatalf("cancel exit %d: %s", code, errOut)
	}
	j := c.waitState(id, 30*time.Second, api.StateCancelled)
	if j.EndTime == nil {
		t.Error("cancelled job has no end time")
	}
	waitFor(t, 10*time.Second, func() bool { return countProcs("sleep "+marker) == 0 })

	_, errOut, code := c.hpcsub("cancel", fmt.Sprint(id))
	if code != 1 || !strings.Contains(errOut, "already ended") {
		t.Errorf("second cancel: exit %d, stderr %q; want exit 1 saying it already ended", code, errOut)
	}
}

func TestCrashRecoveryLosesNothing(t *testing.T) {
	c := startCluster(t)
	// One job takes every CPU so the other 20 queue behind it.
	nodes := c.nodes()
	big := c.writeJob("big.hcl", fmt.Sprintf(`job "big" {
  walltime = "5m"
  resources { cpus = %d }
  task {
    command = "sleep"
    args    = ["4"]
  }
}`, nodes[0].CPUs))
	small := c.writeJob("small.hcl", `job "small" {
  walltime = "1m"
  task { script = "echo done" }
}`)
	runningID := c.submit(big)
	c.waitState(runningID, 30*time.Second, api.StateRunning)
	var queued []uint64
	for i := 0; i < 20; i++ {
		queued = append(queued, c.submit(small))
	}
	for _, id := range queued {
		if st := c.show(id).State; st != api.StatePending {
			t.Fatalf("job %d is %s before the crash, want PENDING", id, st)
		}
	}

	c.kill9()
	c.start()

	all := append([]uint64{runningID}, queued...)
	for _, id := range all {
		j := c.waitState(id, 60*time.Second, api.StateCompleted, api.StateFailed, api.StateNodeFail, api.StateCancelled)
		if j.State != api.StateCompleted {
			t.Errorf("job %d ended %s (%s), want COMPLETED", id, j.State, j.Reason)
		}
		starts := 0
		for _, tr := range j.History {
			if tr.State == api.StateRunning {
				starts++
			}
		}
		if starts != 1 {
			t.Errorf("job %d started %d times, want exactly once: %+v", id, starts, j.History)
		}
	}
	// Ended jobs leave the live queue for the accounting archive.
	out, _, _ := c.hpcsub("history", "--json")
	var listed []api.Job
	mustJSON(t, out, &listed)
	if len(listed) != 21 {
		t.Errorf("history lists %d jobs after the restart, want 21", len(listed))
	}
	for _, id := range queued {
		b, err := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", id)))
		if err != nil || string(b) != "done\n" {
			t.Errorf("job %d output %q, %v; want exactly one run's output", id, b, err)
		}
	}
}

func (c *cluster) nodes() []api.Node {
	c.t.Helper()
	out, errOut, code := c.hpcsub("nodes", "--json")
	if code != 0 {
		c.t.Fatalf("nodes: exit %d: %s", code, errOut)
	}
	var ns []api.Node
	mustJSON(c.t, out, &ns)
	return ns
}

func countProcs(pattern string) int {
	out, _ := exec.Command("pgrep", "-c", "-f", "^"+pattern+"$").Output()
	var n int
	fmt.Sscan(strings.TrimSpace(string(out)), &n)
	return n
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v", timeout)
}

// An ordinary user submits through the socket (identified by SO_PEERCRED)
// and the job, a script, runs as that user, not as the daemon's root.
func TestJobRunsAsTheSubmitter(t *testing.T) {
	c := startCluster(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	file := c.writeJob("whoami.hcl", `job "whoami" {
  walltime = "1m"
  task {
    script = <<-EOT
      id -u
      touch mine
    EOT
  }
}`)
	os.Chmod(file, 0o644)
	out, errOut, code := c.hpcsubAs(nobody, "submit", "--wait", file)
	if code != 0 {
		t.Fatalf("submit --wait as nobody: exit %d: %s%s", code, out, errOut)
	}
	var id uint64
	fmt.Sscan(strings.TrimSpace(out), &id)
	b, err := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", id)))
	if err != nil || strings.TrimSpace(string(b)) != "65534" {
		t.Fatalf("job printed %q (%v), want uid 65534", b, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(c.work, "mine"), &st); err != nil || st.Uid != 65534 {
		t.Fatalf("file made by the job: owner %d (%v), want 65534", st.Uid, err)
	}
	// Root sees the job as nobody's; nobody may not touch root's jobs.
	if j := c.show(id); j.User != "nobody" || j.UID != 65534 {
		t.Errorf("job owner %s/%d, want nobody/65534", j.User, j.UID)
	}
	rootJob := c.submit(c.writeJob("root.hcl", `job "r" {
  walltime = "1m"
  task { script = "true" }
}`))
	_, errOut, code = c.hpcsubAs(nobody, "cancel", fmt.Sprint(rootJob))
	if code != 1 || !strings.Contains(errOut, "another user") {
		t.Errorf("nobody cancelling root's job: exit %d, %q; want exit 1 saying it is another user's", code, errOut)
	}
}

// The submitter's umask reaches the job: with 077 its output is private.
func TestOutputFollowsTheSubmittersUmask(t *testing.T) {
	c := startCluster(t)
	file := c.writeJob("private.hcl", `job "private" {
  walltime = "1m"
  task { script = "echo secret" }
}`)
	old := syscall.Umask(0o077)
	out, errOut, code := c.hpcsub("submit", "--wait", file)
	syscall.Umask(old)
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errOut)
	}
	var id uint64
	fmt.Sscan(strings.TrimSpace(out), &id)
	st, err := os.Stat(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", id)))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("output mode %v (%v), want -rw------- under umask 077", st.Mode().Perm(), err)
	}
}

// Exit code 85 means "checkpoint saved, run me again": the job is requeued,
// finds its state in HPC_CHECKPOINT_DIR and knows its restart count.
func TestCheckpointRestartWithExit85(t *testing.T) {
	c := startCluster(t)
	file := c.writeJob("resume.hcl", `job "resume" {
  walltime = "1m"
  checkpoint {
    max_restarts = 2
  }
  task {
    script = <<-EOT
      echo "run $HPC_RESTART_COUNT" >> "$HPC_CHECKPOINT_DIR/log"
      if [ "$HPC_RESTART_COUNT" = 0 ]; then exit 85; fi
      cat "$HPC_CHECKPOINT_DIR/log"
    EOT
  }
}`)
	out, errOut, code := c.hpcsub("submit", "--wait", file)
	if code != 0 {
		t.Fatalf("submit --wait: exit %d: %s", code, errOut)
	}
	var id uint64
	fmt.Sscan(strings.TrimSpace(out), &id)
	j := c.show(id)
	if j.State != api.StateCompleted || j.Restarts != 1 {
		t.Fatalf("ended %s after %d restarts, want COMPLETED after 1", j.State, j.Restarts)
	}
	b, _ := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", id)))
	if string(b) != "run 0\nrun 1\n" {
		t.Fatalf("output %q, want both runs' lines from the checkpoint directory", b)
	}
}

// A daemon that stops with no job running leaves no cgroup behind.
func TestStopLeavesNoCgroup(t *testing.T) {
	c := startCluster(t)
	id := c.submit(c.writeJob("quick.hcl", `job "quick" {
  walltime = "1m"
  task { script = "true" }
}`))
	c.waitState(id, 30*time.Second, api.StateCompleted)
	c.stop()
	var parent string
	for _, f := range strings.Fields(c.log.String()) {
		if v, ok := strings.CutPrefix(f, "cgroup_parent="); ok {
			parent = v
		}
	}
	if parent == "" || !strings.Contains(c.log.String(), "isolation=cgroup-v1") {
		t.Skip("not on cgroup v1 here: nothing to check")
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", parent)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still exists after hpcd stopped (%v)", parent, err)
	}
}
