package e2e

import (
	"bytes"
	"context"
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

// proc is a daemon started by a test, stopped (SIGTERM) at its end.
type proc struct {
	cmd *exec.Cmd
	log bytes.Buffer
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(binDir, "hpcd"), args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("hpcd %s log:\n%s", args[0], p.log.String())
		}
	})
	return p
}

// TestVirtualAgents runs `hpcd server` and `hpcd agent --virtual 10
// --node-class docs/examples/cluster.hcl` as processes: ten virtual nodes
// join over HTTPS with their own certificates, show up in the node list
// with their classes' hardware, and run jobs placed by what they ask for.
func TestVirtualAgents(t *testing.T) {
	base := t.TempDir()
	sockDir, err := os.MkdirTemp("", "hpc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "s")
	addr := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	data := filepath.Join(base, "server")
	startProc(t, "server", "--data-dir", data, "--listen", "unix://"+sock, "--listen", addr,
		"--shares", "heavy=3,light=1", "--weight-fairshare", "5000", "--fairshare-half-life", "2h")
	join := filepath.Join(data, "agent-join")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(join); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hpcd server wrote no agent-join file within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	startProc(t, "agent", "--join", join, "--data-dir", filepath.Join(base, "agent"),
		"--virtual", "10", "--node-class", "../docs/examples/cluster.hcl", "--features", "sim")

	cl, err := api.NewClient("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var nodes []api.Node
	for deadline = time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		nodes, err = cl.Nodes(ctx)
		up := 0
		for _, n := range nodes {
			if n.State == api.NodeIdle {
				up++
			}
		}
		if err == nil && up == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes after 60 s: %+v (%v)", nodes, err)
		}
	}
	// The cluster's server takes the fair-share configuration (hpcd dev's
	// flags): a cluster without it would schedule with no fair-share at all.
	rep, err := cl.Priority(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Weights.FairShare != 5000 || rep.Weights.HalfLife != "2h0m0s" {
		t.Errorf("priority weights %+v: want fair-share 5000 and half-life 2h from the server's flags", rep.Weights)
	}
	classes := map[string]int{}
	for _, n := range nodes {
		classes[n.Name[:strings.LastIndex(n.Name, "-")]]++
		if n.Isolation != "virtual" || !contains(n.Features, "sim") {
			t.Errorf("node %s: isolation %q, features %v; want virtual and sim among them", n.Name, n.Isolation, n.Features)
		}
		if strings.HasPrefix(n.Name, "dgx-a100-") && (len(n.GPUs) != 8 || n.CPUs != 256 || n.GPUs[0].Model != "NVIDIA A100-SXM4-80GB") {
			t.Errorf("node %s: %d CPUs, GPUs %+v", n.Name, n.CPUs, n.GPUs)
		}
	}
	if fmt.Sprint(classes) != "map[cpu:6 dgx-a100:1 l4:3]" {
		t.Errorf("classes = %v, want 6 cpu, 1 dgx-a100, 3 l4", classes)
	}

	work := filepath.Join(base, "work")
	os.MkdirAll(work, 0o755)
	submit := func(src string) uint64 {
		t.Helper()
		resp, err := cl.Submit(ctx, api.SubmitRequest{Filename: filepath.Join(work, "job.hcl"), Source: src, Cwd: work})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		return resp.IDs[0]
	}
	nv := submit(`job "nv8" {
  walltime = "1m"
  resources {
    gpu {
      count = 8
      link  = "nvlink"
    }
  }
  task {
    command = "/bin/true"
    env     = { HPC_VIRTUAL_RUNTIME = "1" }
  }
}
`)
	fail := submit(`job "fails" {
  walltime = "1m"
  task {
    command = "/bin/true"
    env     = { HPC_VIRTUAL_RUNTIME = "0", HPC_VIRTUAL_EXIT = "7" }
  }
}
`)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	j, err := cl.Wait(wctx, nv)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != api.StateCompleted || len(j.Nodes) != 1 || !strings.HasPrefix(j.Nodes[0], "dgx-a100-") || len(j.GPUs[j.Nodes[0]]) != 8 {
		t.Errorf("8-GPU job: %s on %v GPUs %v (%s); want COMPLETED on the DGX with 8 GPUs", j.State, j.Nodes, j.GPUs, j.Reason)
	}
	if el := j.EndTime.Sub(*j.StartTime); el < time.Second {
		t.Errorf("8-GPU job held its node %v, want at least HPC_VIRTUAL_RUNTIME (1 s)", el)
	}
	if j, err = cl.Wait(wctx, fail); err != nil || j.State != api.StateFailed || j.ExitCode == nil || *j.ExitCode != 7 {
		t.Errorf("failing job: %+v (%v); want FAILED exit 7", j, err)
	}
}

// TestVirtualAgentFlags: mistakes in --virtual / --node-class exit 2 with
// one clear message, before anything is created or sent.
func TestVirtualAgentFlags(t *testing.T) {
	dir := t.TempDir()
	join := filepath.Join(dir, "agent-join")
	os.WriteFile(join, []byte(`{"servers":["https://127.0.0.1:1"],"ca_fingerprint":"sha256:00","secret":"x"}`), 0o600)
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("class \"x\" {\n  count = 0\n  cpus = 1\n  memory = \"1GiB\"\n}\n"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--virtual", "5"}, "--virtual needs --node-class FILE"},
		{[]string{"--virtual", "0", "--node-class", "../docs/examples/cluster.hcl"}, "ask for 1 to 1000"},
		{[]string{"--virtual", "1001", "--node-class", "../docs/examples/cluster.hcl"}, "ask for 1 to 1000"},
		{[]string{"--virtual", "5", "--node-class", bad}, "bad.hcl:2:11: Invalid count"},
		{[]string{"--virtual", "5", "--node-class", filepath.Join(dir, "missing.hcl")}, "no such file"},
		{[]string{"--virtual", "5", "--node-class", "../docs/examples/cluster.hcl", "--name", "n1"}, "--name and --virtual exclude each other"},
		{[]string{"--node-class", "../docs/examples/cluster.hcl"}, "--node-class goes with --virtual N"},
	}
	for _, tt := range tests {
		data := filepath.Join(dir, "data")
		cmd := exec.Command(filepath.Join(binDir, "hpcd"), append([]string{"agent", "--join", join, "--data-dir", data}, tt.args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
			t.Errorf("hpcd agent %v: %v\n%s\nwant exit 2 and %q", tt.args, err, out, tt.want)
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("hpcd agent %v created its data directory", tt.args)
			os.RemoveAll(data)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
