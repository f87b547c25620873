// Package e2e drives the real binaries: it builds hpcd and hpcsub, starts
// `hpcd dev` as a process on a temporary data directory and socket, and
// uses hpcsub exactly as a user would.
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

var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(floodEnv) != "" {
		os.Exit(runFlood())
	}
	dir, err := os.MkdirTemp("", "hpc-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Tests run hpcsub as other users too.
	os.Chmod(dir, 0o755)
	for _, cmd := range []string{"hpcd", "hpcsub", "hpc-shim"} {
		b := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../cmd/"+cmd)
		b.Env = append(os.Environ(), "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations")
		if out, err := b.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", cmd, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one running `hpcd dev`.
type cluster struct {
	t       testing.TB
	dataDir string
	sock    string
	work    string // a directory jobs run in
	cmd     *exec.Cmd
	log     *bytes.Buffer
	extra   []string
}

func startCluster(t testing.TB, extra ...string) *cluster {
	t.Helper()
	c := newCluster(t, extra...)
	c.start()
	t.Cleanup(c.shutdown)
	return c
}

// newCluster prepares the directories of a cluster without starting it.
func newCluster(t testing.TB, extra ...string) *cluster {
	t.Helper()
	base := t.TempDir()
	// Socket paths are limited to 108 bytes: keep them short.
	sockDir, err := os.MkdirTemp("", "hpc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	// Other users (tests submit as nobody) must reach the work directory
	// and the socket; temporary directories are made 0700.
	for _, d := range []string{filepath.Dir(base), base, sockDir} {
		os.Chmod(d, 0o755)
	}
	c := &cluster{t: t, dataDir: filepath.Join(base, "data"), sock: filepath.Join(sockDir, "s"), work: filepath.Join(base, "work"), extra: extra}
	if err := os.MkdirAll(c.work, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(c.work, 0o777) // past the umask: jobs of other users write here
	return c
}

func (c *cluster) start() {
	c.t.Helper()
	c.log = &bytes.Buffer{}
	args := append([]string{"dev", "--data-dir", c.dataDir, "--listen", c.sock}, c.extra...)
	c.cmd = exec.Command(filepath.Join(binDir, "hpcd"), args...)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if out, _, code := c.hpcsub("nodes", "--json"); code == 0 && strings.Contains(out, "\"name\"") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("hpcd dev did not come up; its log:\n%s", c.log)
}

// kill9 kills hpcd the hard way, as a crash would.
func (c *cluster) kill9() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

func (c *cluster) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	}
	if c.t.Failed() {
		c.t.Logf("hpcd log:\n%s", c.log)
	}
}

// shutdown stops hpcd at the end of a test and ends the jobs it leaves.
func (c *cluster) shutdown() {
	c.stop()
	c.killLeftoverJobs()
}

// killLeftoverJobs ends the shims (and the job trees under them) that a
// stopped daemon left running by design, so that they neither outlive the
// test nor write into its data directory while it is being removed.
func (c *cluster) killLeftoverJobs() {
	entries, _ := os.ReadDir("/proc")
	var shims []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 2 && args[0] == "hpc-shim" && strings.HasPrefix(args[1], c.dataDir+string(filepath.Separator)) {
			shims = append(shims, pid)
		}
	}
	for _, pid := range shims {
		killTree(pid)
	}
	for _, pid := range shims {
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// killTree SIGKILLs pid's descendants, then pid itself.
func killTree(pid int) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(children)) {
			var child int
			if _, err := fmt.Sscan(f, &child); err == nil {
				killTree(child)
			}
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// hpcsub runs the CLI as root in the work directory.
func (c *cluster) hpcsub(args ...string) (stdout, stderr string, code int) {
	return c.hpcsubAs(nil, args...)
}

func (c *cluster) hpcsubAs(cred *syscall.Credential, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hpcsub"), args...)
	cmd.Dir = c.work
	cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
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

// writeJob writes a job file into the work directory.
func (c *cluster) writeJob(name, src string) string {
	c.t.Helper()
	p := filepath.Join(c.work, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// submit submits a file and returns its job id.
func (c *cluster) submit(file string, args ...string) uint64 {
	c.t.Helper()
	out, errOut, code := c.hpcsub(append(append([]string{"submit"}, args...), file)...)
	if code != 0 {
		c.t.Fatalf("submit %s: exit %d: %s", file, code, errOut)
	}
	var id uint64
	if _, err := fmt.Sscan(strings.TrimSpace(out), &id); err != nil {
		c.t.Fatalf("submit printed %q, want a job id", out)
	}
	return id
}

func (c *cluster) show(id uint64) api.Job {
	c.t.Helper()
	out, errOut, code := c.hpcsub("show", "--json", fmt.Sprint(id))
	if code != 0 {
		c.t.Fatalf("show %d: exit %d: %s", id, code, errOut)
	}
	var j api.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		c.t.Fatalf("show %d: %v in %q", id, err, out)
	}
	return j
}

// waitState polls until job id is in one of states.
func (c *cluster) waitState(id uint64, timeout time.Duration, states ...api.JobState) api.Job {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var j api.Job
	for time.Now().Before(deadline) {
		j = c.show(id)
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("job %d is %s after %v, want one of %v", id, j.State, timeout, states)
	return j
}
