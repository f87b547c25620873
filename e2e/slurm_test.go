package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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

// What a Slurm user reaches for (issue 9), each against a real `hpcd dev`.

var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// hpcsubIn runs hpcsub with stdin.
func (c *cluster) hpcsubIn(stdin string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hpcsub"), args...)
	cmd.Dir = c.work
	cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run hpcsub %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// must runs hpcsub and fails the test unless it exits 0.
func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.hpcsub(args...)
	if code != 0 {
		c.t.Fatalf("hpcsub %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// readOutput is job id's output file, "" while it does not exist.
func (c *cluster) readOutput(id uint64) string {
	b, _ := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("hpc-%d.out", id)))
	return string(b)
}

func parseIDs(t *testing.T, out string) []uint64 {
	t.Helper()
	var ids []uint64
	for _, f := range strings.Fields(out) {
		var id uint64
		if _, err := fmt.Sscan(f, &id); err != nil {
			t.Fatalf("submit printed %q, want job ids", out)
		}
		ids = append(ids, id)
	}
	return ids
}

// An sbatch script works unchanged: #!/bin/bash, bash syntax, ${VAR};
// ${var.x} is still the job file's; the job's environment is Slurm's.
func TestScriptsAsUsersWriteThem(t *testing.T) {
	c := startCluster(t)
	os.WriteFile(filepath.Join(c.work, "run.sh"), []byte(`#!/bin/bash
set -euo pipefail
words=(a b c)
echo "bash ${#words[@]} ${BASH_VERSION:+yes} ${UNSET_VAR:-dflt}"
`), 0o644)
	fromFile := c.submit(c.writeJob("file.hcl", `job "from-file" {
  walltime = "1m"
  task { script_file = "run.sh" }
}`), "--wait")
	if got := c.readOutput(fromFile); got != "bash 3 yes dflt\n" {
		t.Errorf("script_file output %q", got)
	}
	inline := c.submit(c.writeJob("inline.hcl", `variable "who" { default = "file" }
job "env-${var.who}" {
  walltime = "1m"
  resources {
    cpus   = 1
    memory = "300MiB"
  }
  task {
    script = <<-EOT
      #!/bin/bash
      set -o pipefail
      echo "${var.who} $HPC_JOB_NAME ${HPC_CPUS} ${HPC_MEM} ${HPC_SUBMIT_DIR} [${HPC_GPUS}] $${HOME:+home}"
      echo "to stderr" >&2
    EOT
  }
}`), "--wait")
	want := fmt.Sprintf("file env-file 1 300 %s [] home\nto stderr\n", c.work)
	if got := c.readOutput(inline); got != want {
		t.Errorf("inline script output %q, want %q (stderr joins stdout)", got, want)
	}
	if _, err := os.Stat(filepath.Join(c.work, fmt.Sprintf("hpc-%d.err", inline))); !os.IsNotExist(err) {
		t.Errorf("an .err file was left without error set: %v", err)
	}
	// Outside a script ${HOME} is HCL, and the message says how to write it.
	_, errOut, code := c.hpcsub("submit", c.writeJob("args.hcl", `job "a" {
  task {
    command = "/bin/echo"
    args    = ["${HOME}"]
  }
}`))
	if code != 1 || !strings.Contains(errOut, "args.hcl:4:") || !strings.Contains(errOut, "$${HOME}") {
		t.Errorf("shell variable outside script: exit %d, %q", code, errOut)
	}
}

func TestDependencies(t *testing.T) {
	c := startCluster(t)
	first := c.submit(c.writeJob("first.hcl", `job "first" {
  walltime = "1m"
  task { script = "sleep 2; echo first >> order" }
}`))
	second := c.submit(c.writeJob("second.hcl", `job "second" {
  walltime = "1m"
  task { script = "echo second >> order" }
}`), "--afterok", fmt.Sprint(first))
	if j := c.show(second); j.State != api.StatePending || !strings.HasPrefix(j.Reason, "Dependency") {
		t.Errorf("second is %s (%s) while first runs, want PENDING with reason Dependency", j.State, j.Reason)
	}
	queue := c.must("queue")
	if !strings.Contains(queue, fmt.Sprintf("Dependency (afterok:%d)", first)) {
		t.Errorf("queue does not say what the job waits for:\n%s", queue)
	}
	// --wait prints the state changes as they happen.
	_, errOut, code := c.hpcsub("submit", "--wait", "--afterany", fmt.Sprint(second), c.writeJob("third.hcl", `job "third" {
  walltime = "1m"
  task { script = "echo third >> order" }
}`))
	if code != 0 || !strings.Contains(errOut, fmt.Sprintf("PENDING: Dependency (afterany:%d)", second)) || !strings.HasSuffix(errOut, "COMPLETED\n") {
		t.Errorf("submit --wait: exit %d, stderr %q", code, errOut)
	}
	c.waitState(second, 30*time.Second, api.StateCompleted)
	if b, _ := os.ReadFile(filepath.Join(c.work, "order")); string(b) != "first\nsecond\nthird\n" {
		t.Errorf("order = %q", b)
	}

	// A dependency that can never be met ends the job at once. The failing
	// job sleeps first: names match live jobs only, and a job that had
	// already failed and left the live set could not be named.
	failing := c.submit(c.writeJob("fail.hcl", `job "fail" {
  walltime = "1m"
  task { script = "sleep 1; exit 3" }
}`))
	never := c.submit(c.writeJob("never.hcl", `job "never" {
  walltime   = "1m"
  depends_on = ["fail"]
  task { script = "true" }
}`))
	j := c.waitState(never, 30*time.Second, api.StateCancelled)
	if !strings.HasPrefix(j.Reason, "DependencyNeverSatisfied") || !strings.Contains(j.Reason, fmt.Sprint(failing)) {
		t.Errorf("reason %q, want DependencyNeverSatisfied naming job %d", j.Reason, failing)
	}
	notok := c.submit(c.writeJob("notok.hcl", `job "notok" {
  walltime = "1m"
  task { script = "true" }
}`), "--afternotok", fmt.Sprint(failing))
	c.waitState(notok, 30*time.Second, api.StateCompleted)

	// An array as a dependency means all of its elements.
	arr := parseIDs(t, c.must("submit", c.writeJob("arr.hcl", `job "arr" {
  walltime = "1m"
  task { script = "sleep 1; echo $HPC_ARRAY_INDEX >> elements" }
  array { count = 3 }
}`)))
	after := c.submit(c.writeJob("after.hcl", `job "after" {
  walltime = "1m"
  task { script = "wc -l < elements" }
}`), "--afterany", fmt.Sprint(arr[0]), "--wait")
	if got := strings.TrimSpace(c.readOutput(after)); got != "3" {
		t.Errorf("the job after the array saw %s elements done, want 3", got)
	}
	// Only one's own jobs.
	_, errOut, code = c.hpcsubAs(nobody, "submit", "--afterok", fmt.Sprint(first), c.writeJob("x.hcl", `job "x" {
  task { script = "true" }
}`))
	if code != 1 || !strings.Contains(errOut, "only on your own jobs") {
		t.Errorf("depending on another user's job: exit %d, %q", code, errOut)
	}
}

func TestArraysAsOneJob(t *testing.T) {
	c := startCluster(t)
	ids := parseIDs(t, c.must("submit", c.writeJob("sweep.hcl", `job "sweep" {
  walltime = "5m"
  output   = "sweep-%A_%a.out"
  task { script = "echo $HPC_ARRAY_JOB_ID $HPC_ARRAY_INDEX $HPC_ARRAY_TASK_COUNT; sleep 300" }
  array {
    indices     = "1-13:2"
    max_running = 1
  }
}`)))
	if len(ids) != 7 {
		t.Fatalf("indices 1-13:2 made %d jobs, want 7", len(ids))
	}
	a := ids[0]
	c.waitState(a, 30*time.Second, api.StateRunning)
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(c.work, fmt.Sprintf("sweep-%d_1.out", a)))
		return string(b) == fmt.Sprintf("%d 1 7\n", a)
	})
	if out := c.must("logs", fmt.Sprintf("%d_1", a)); out != fmt.Sprintf("%d 1 7\n", a) {
		t.Errorf("logs of element 1: %q", out)
	}
	queue := c.must("queue")
	if !strings.Contains(queue, fmt.Sprintf("%d_1 ", a)) || !strings.Contains(queue, fmt.Sprintf("%d_[3-13:2]", a)) ||
		strings.Count(queue, "\n") != 3 {
		t.Errorf("queue does not fold the pending elements into one line:\n%s", queue)
	}
	show := c.must("show", fmt.Sprint(a))
	if !strings.Contains(show, "7 elements") || !strings.Contains(show, "6 PENDING, 1 RUNNING") {
		t.Errorf("show of the array:\n%s", show)
	}
	if out := c.must("show", fmt.Sprintf("%d_5", a)); !strings.Contains(out, fmt.Sprintf("%d_5", a)) ||
		!strings.Contains(out, fmt.Sprint(ids[2])) {
		t.Errorf("show of element 5:\n%s", out)
	}
	if out := c.must("hold", fmt.Sprintf("%d_[9-13]", a)); out != fmt.Sprintf("job %d_[9-13:2] HELD\n", a) {
		t.Errorf("hold of a range: %q", out)
	}
	if out := c.must("cancel", fmt.Sprintf("%d_3", a)); out != fmt.Sprintf("job %d_3 CANCELLED\n", a) {
		t.Errorf("cancel of one element: %q", out)
	}
	out := c.must("cancel", fmt.Sprint(a))
	if out != fmt.Sprintf("job %d_[1,5-13:2] CANCELLED\n", a) {
		t.Errorf("cancel of the array: %q", out)
	}
	for _, id := range ids {
		c.waitState(id, 30*time.Second, api.StateCancelled)
	}
	// Ended elements leave the live set for the archive; the array is
	// still shown whole.
	waitFor(t, 20*time.Second, func() bool {
		out, _, _ := c.hpcsub("show", fmt.Sprint(a))
		return strings.Contains(out, "7 elements") && strings.Contains(out, "7 CANCELLED")
	})
	// Many ids, and all of a user's pending jobs, in one request each.
	var many []string
	for i := 0; i < 3; i++ {
		many = append(many, fmt.Sprint(c.submit(c.writeJob("p.hcl", `job "p" {
  walltime = "1m"
  task { script = "sleep 60" }
}`), "--hold")))
	}
	if out := c.must(append([]string{"cancel"}, many...)...); strings.Count(out, "CANCELLED") != 3 {
		t.Errorf("cancel of three ids: %q", out)
	}
	for i := 0; i < 2; i++ {
		c.submit(c.writeJob("p.hcl", `job "p" {
  walltime = "1m"
  task { script = "sleep 60" }
}`), "--hold")
	}
	if out := c.must("cancel", "--user", "root", "--state", "HELD"); strings.Count(out, "CANCELLED") != 2 {
		t.Errorf("cancel --user root --state HELD: %q", out)
	}
}

func TestCancelLikeSlurm(t *testing.T) {
	c := startCluster(t, "--kill-wait", "2s")
	polite := c.submit(c.writeJob("polite.hcl", `job "polite" {
  walltime = "5m"
  task {
    script = <<-EOT
      trap 'echo got USR1' USR1
      trap 'echo got TERM; exit 0' TERM
      echo ready
      while true; do sleep 0.2; done
    EOT
  }
}`))
	c.waitState(polite, 30*time.Second, api.StateRunning)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(c.readOutput(polite), "ready") })
	if out := c.must("cancel", "--signal", "USR1", fmt.Sprint(polite)); !strings.Contains(out, "signalled (USR1)") {
		t.Errorf("cancel --signal: %q", out)
	}
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(c.readOutput(polite), "got USR1") })
	if j := c.show(polite); j.State != api.StateRunning {
		t.Fatalf("a signal ended the job: %s", j.State)
	}
	// It exits 0 on the SIGTERM, and still ends CANCELLED, as in Slurm:
	// the cancel, not the exit code, is why it ended.
	c.must("cancel", fmt.Sprint(polite))
	c.waitState(polite, 30*time.Second, api.StateCancelled)
	if !strings.Contains(c.readOutput(polite), "got TERM") {
		t.Errorf("the job was not sent SIGTERM first: %q", c.readOutput(polite))
	}

	stubborn := c.submit(c.writeJob("stubborn.hcl", `job "stubborn" {
  walltime = "5m"
  task {
    script = <<-EOT
      trap 'echo ignoring TERM' TERM
      echo ready
      while true; do sleep 0.2; done
    EOT
  }
}`))
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(c.readOutput(stubborn), "ready") })
	start := time.Now()
	c.must("cancel", fmt.Sprint(stubborn))
	j := c.waitState(stubborn, 30*time.Second, api.StateCancelled)
	if time.Since(start) < 2*time.Second || j.Signal != "SIGKILL" {
		t.Errorf("a job ignoring TERM ended after %v with %q, want SIGKILL after the 2s grace", time.Since(start), j.Signal)
	}
	if !strings.Contains(c.readOutput(stubborn), "ignoring TERM") {
		t.Errorf("no SIGTERM before the kill: %q", c.readOutput(stubborn))
	}

	// A job may choose what a cancel sends first.
	own := c.submit(c.writeJob("own.hcl", `job "own" {
  walltime      = "5m"
  cancel_signal = "SIGUSR2"
  task {
    script = <<-EOT
      trap 'echo got USR2; exit 7' USR2
      echo ready
      while true; do sleep 0.2; done
    EOT
  }
}`))
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(c.readOutput(own), "ready") })
	c.must("cancel", fmt.Sprint(own))
	c.waitState(own, 30*time.Second, api.StateCancelled)
	if !strings.Contains(c.readOutput(own), "got USR2") {
		t.Errorf("cancel_signal was not sent: %q", c.readOutput(own))
	}
}

func TestQueueShowsEveryoneDetailsStayPrivate(t *testing.T) {
	c := startCluster(t)
	rootJob := c.submit(c.writeJob("root.hcl", `job "rootjob" {
  walltime = "1m"
  task { script = "sleep 60" }
}`), "--hold")
	out, errOut, code := c.hpcsubAs(nobody, "queue")
	if code != 0 || !strings.Contains(out, "rootjob") || !strings.Contains(out, "root") {
		t.Errorf("nobody's queue (exit %d, %s):\n%s", code, errOut, out)
	}
	out, _, _ = c.hpcsubAs(nobody, "queue", "--me")
	if strings.Contains(out, "rootjob") {
		t.Errorf("queue --me shows root's job:\n%s", out)
	}
	out, _, _ = c.hpcsubAs(nobody, "show", "--json", fmt.Sprint(rootJob))
	var j api.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.Name != "rootjob" || j.Workdir != "" || j.Output != "" || !j.Private {
		t.Errorf("another user's job as nobody sees it: %+v (%v)", j, err)
	}
	if _, errOut, code := c.hpcsubAs(nobody, "logs", fmt.Sprint(rootJob)); code != 1 || !strings.Contains(errOut, "its output is private") {
		t.Errorf("logs of another's job: exit %d, %q", code, errOut)
	}
	_, errOut, code = c.hpcsubAs(nobody, "cancel", fmt.Sprint(rootJob))
	if code != 1 || errOut != fmt.Sprintf("hpcsub: cancel %d: belongs to another user (root): you can change only your own jobs\n", rootJob) {
		t.Errorf("cancel of another's job: exit %d, %q", code, errOut)
	}
}

func TestDryRunCreatesNothing(t *testing.T) {
	c := startCluster(t)
	file := c.writeJob("two.hcl", `job "two" {
  walltime = "5m"
  resources { cpus = 2 }
  task { script = "sleep 300" }
}`)
	out := c.must("submit", "--dry-run", "--json", file)
	var d struct {
		CanRun bool             `json:"can_run"`
		Nodes  []string         `json:"nodes"`
		GPUs   map[string][]int `json:"gpus"`
		Start  string           `json:"start"`
		Reason string           `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("dry run JSON %q: %v", out, err)
	}
	if _, err := time.Parse(time.RFC3339, d.Start); err != nil || !d.CanRun || len(d.Nodes) != 1 || d.GPUs == nil {
		t.Errorf("dry run on an idle machine: %+v", d)
	}
	if list := c.must("queue", "--all", "--json"); strings.TrimSpace(list) != "[]" {
		t.Errorf("a dry run created a job: %s", list)
	}
	c.waitState(c.submit(file), 30*time.Second, api.StateRunning)
	c.submit(file) // blocked first: it holds the (EASY) reservation
	out = c.must("submit", "--dry-run", "--json", file)
	d.CanRun, d.Start, d.Reason = false, "", ""
	json.Unmarshal([]byte(out), &d)
	if d.CanRun || d.Reason != "Resources" {
		t.Errorf("dry run on a full machine: %s", out)
	}
	start, err := time.Parse(time.RFC3339, d.Start)
	if err != nil || time.Until(start) < 9*time.Minute || len(d.Nodes) != 1 {
		t.Errorf("the dry run does not say when and where, behind two 5-minute jobs: %s", out)
	}
	if out := c.must("submit", "--dry-run", file); !strings.Contains(out, "would wait (Resources), expected to start") {
		t.Errorf("dry run text: %q", out)
	}
}

func TestSubmitOverridesStdinUpdate(t *testing.T) {
	c := startCluster(t)
	src := `job "fromstdin" {
  walltime = "10m"
  task { script = "sleep 60" }
}`
	out, errOut, code := c.hpcsubIn(src, "submit", "--name", "renamed", "--time", "5m", "--hold", "--priority", "50", "-")
	if code != 0 {
		t.Fatalf("submit - : exit %d: %s", code, errOut)
	}
	id := parseIDs(t, out)[0]
	j := c.show(id)
	if j.Name != "renamed" || j.WalltimeSec != 300 || j.State != api.StateHeld || j.Priority != 50 {
		t.Errorf("overrides: %+v", j)
	}
	if out := c.must("update", fmt.Sprint(id), "--walltime", "2m", "--priority", "10"); !strings.Contains(out, "updated") {
		t.Errorf("update: %q", out)
	}
	if j := c.show(id); j.WalltimeSec != 120 || j.Priority != 10 {
		t.Errorf("after update: walltime %ds priority %d", j.WalltimeSec, j.Priority)
	}
	// Users may only lower them.
	nobodyJob := c.writeJob("n.hcl", src)
	out, errOut, code = c.hpcsubAs(nobody, "submit", "--hold", nobodyJob)
	if code != 0 {
		t.Fatalf("submit as nobody: %s", errOut)
	}
	nid := parseIDs(t, out)[0]
	if _, errOut, code := c.hpcsubAs(nobody, "update", fmt.Sprint(nid), "--priority", "900"); code != 1 || !strings.Contains(errOut, "only lower") {
		t.Errorf("raising one's priority: exit %d, %q", code, errOut)
	}
	// Several files in one call; a missing output directory is refused
	// before anything is created.
	a := c.writeJob("a.hcl", `job "a" {
  task { script = "true" }
}`)
	b := c.writeJob("b.hcl", `job "b" {
  task { script = "true" }
}`)
	if ids := parseIDs(t, c.must("submit", a, b)); len(ids) != 2 {
		t.Errorf("two files made %v", ids)
	}
	_, errOut, code = c.hpcsub("submit", c.writeJob("logs.hcl", `job "l" {
  output = "logs/%x-%j.out"
  task { script = "true" }
}`))
	if code != 1 || !strings.Contains(errOut, "output directory "+filepath.Join(c.work, "logs")+" does not exist") {
		t.Errorf("missing output directory: exit %d, %q", code, errOut)
	}
	// Jobs a and b may end (and be archived) meanwhile, so the queue itself
	// is no fixed point: look for the refused job by its name instead.
	var listed []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(c.must("queue", "--all", "--json")), &listed); err != nil {
		t.Fatalf("queue --json: %v", err)
	}
	for _, j := range listed {
		if j.Name == "l" {
			t.Error("a refused submit created a job")
		}
	}
}
