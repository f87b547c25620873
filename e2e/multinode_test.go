package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// downTimeout is the DOWN timeout of the multi-node tests: short, so a
// lost node is noticed in seconds.
const downTimeout = "3s"

// multiNode is one `hpcd server` with several real `hpcd agent`
// processes on loopback, each with its own name, data directory and
// cgroup subtree (named after the data directory).
type multiNode struct {
	*cluster // the server process, its socket and the work directory
	base     string
	addr     string // https://127.0.0.1:port
	listen   string // what the server listens on for agents
	join     string

	mu     sync.Mutex
	agents map[string]*exec.Cmd
	logs   map[string]*syncBuffer
}

// syncBuffer is a bytes.Buffer several goroutines (a process's output)
// may write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startMultiNode starts the server; listenHost is the address agents use
// (127.0.0.1 unless a test gives its own network).
func startMultiNode(t *testing.T, listenHost string) *multiNode {
	t.Helper()
	base := t.TempDir()
	sockDir, err := os.MkdirTemp("", "hpc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	for _, d := range []string{filepath.Dir(base), base, sockDir} {
		os.Chmod(d, 0o755)
	}
	hostport := net.JoinHostPort(listenHost, fmt.Sprint(freePort(t)))
	m := &multiNode{
		cluster: &cluster{t: t, dataDir: filepath.Join(base, "server"), sock: filepath.Join(sockDir, "s"), work: filepath.Join(base, "work")},
		base:    base, addr: "https://" + hostport, listen: hostport,
		agents: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{},
	}
	m.join = filepath.Join(m.dataDir, "agent-join")
	if err := os.MkdirAll(m.work, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(m.work, 0o777)
	m.startServer()
	t.Cleanup(m.stopAll)
	return m
}

func (m *multiNode) startServer() {
	m.t.Helper()
	m.log = &bytes.Buffer{}
	m.cmd = exec.Command(filepath.Join(binDir, "hpcd"), "server", "--data-dir", m.dataDir,
		"--listen", "unix://"+m.sock, "--listen", "https://"+m.listen, "--down-timeout", downTimeout)
	buf := &syncBuffer{}
	m.cmd.Stdout, m.cmd.Stderr = buf, buf
	m.mu.Lock()
	m.logs["server"] = buf
	m.mu.Unlock()
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	waitFor(m.t.(*testing.T), 30*time.Second, func() bool {
		// The Unix socket serves before the HTTPS side has written agent-join.
		_, _, code := m.hpcsub("nodes", "--json")
		_, err := os.Stat(m.join)
		return code == 0 && err == nil
	})
}

// killServer kills the server the hard way, as a crash would.
func (m *multiNode) killServer() {
	m.cmd.Process.Kill()
	m.cmd.Wait()
}

// agentCmd is `hpcd agent` for node name, not started.
func (m *multiNode) agentCmd(name string, extra ...string) *exec.Cmd {
	args := append([]string{"agent", "--server", m.addr, "--join", m.join, "--name", name,
		"--data-dir", filepath.Join(m.base, "agent-"+name)}, extra...)
	cmd := exec.Command(filepath.Join(binDir, "hpcd"), args...)
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	m.mu.Lock()
	m.logs[name] = buf
	m.mu.Unlock()
	return cmd
}

// startAgent starts node name's agent and waits until the server shows it up.
func (m *multiNode) startAgent(name string, extra ...string) {
	m.t.Helper()
	m.startAgentCmd(name, m.agentCmd(name, extra...))
}

func (m *multiNode) startAgentCmd(name string, cmd *exec.Cmd) {
	m.t.Helper()
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.agents[name] = cmd
	m.mu.Unlock()
	waitFor(m.t.(*testing.T), 30*time.Second, func() bool {
		n, ok := m.node(name)
		return ok && n.State != api.NodeDown
	})
}

// kill9Agent kills node name's agent the hard way; its jobs live on.
func (m *multiNode) kill9Agent(name string) {
	m.mu.Lock()
	cmd := m.agents[name]
	delete(m.agents, name)
	m.mu.Unlock()
	cmd.Process.Kill()
	cmd.Wait()
}

func (m *multiNode) stopAll() {
	m.mu.Lock()
	agents := m.agents
	m.agents = map[string]*exec.Cmd{}
	m.mu.Unlock()
	for _, cmd := range agents {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range agents {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if m.cmd.ProcessState == nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		m.cmd.Wait()
	}
	if m.t.Failed() {
		m.mu.Lock()
		for name, l := range m.logs {
			m.t.Logf("--- log of %s:\n%s", name, l)
		}
		m.mu.Unlock()
	}
}

func (m *multiNode) node(name string) (api.Node, bool) {
	out, _, code := m.hpcsub("nodes", "--json")
	if code != 0 {
		return api.Node{}, false
	}
	var nodes []api.Node
	if json.Unmarshal([]byte(out), &nodes) != nil {
		return api.Node{}, false
	}
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return api.Node{}, false
}

// runsOf reads the lines a job's runs wrote to runs-<id> in the work dir.
func (m *multiNode) runsOf(id uint64) []string {
	data, _ := os.ReadFile(filepath.Join(m.work, fmt.Sprintf("runs-%d", id)))
	return strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
}

// markedJob is a job of the whole node (every CPU of a loopback agent)
// that records each start and end of a run, with its node, in runs-<id>.
func markedJob(name string, cpus, seconds int, extra string) string {
	return fmt.Sprintf(`job %q {
  walltime = "5m"
  %s
  resources { cpus = %d }
  task {
    script = <<EOT
#!/bin/sh
echo "start $HPC_NODELIST" >> runs-$HPC_JOB_ID
sleep %d
echo "end $HPC_NODELIST" >> runs-$HPC_JOB_ID
EOT
  }
}
`, name, extra, cpus, seconds)
}

// machineCPUs is what every loopback agent reports: this machine's CPUs.
func (m *multiNode) machineCPUs(node string) int {
	m.t.Helper()
	n, ok := m.node(node)
	if !ok || n.CPUs == 0 {
		m.t.Fatalf("node %s: %+v", node, n)
	}
	return n.CPUs
}

func TestClusterNodesLiveDrainAndLoss(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	m.startAgent("a1", "--features", "ib")
	if n, _ := m.node("a1"); !slices.Equal(n.Features, []string{"ib"}) || n.AgentVersion == "" {
		t.Fatalf("node a1 %+v", n)
	}
	cpus := m.machineCPUs("a1")
	file := m.writeJob("whole.hcl", markedJob("whole", cpus, 2, ""))
	j1 := m.submit(file)
	j2 := m.submit(file)
	m.waitState(j1, 30*time.Second, api.StateRunning)
	if j := m.show(j2); j.State != api.StatePending {
		t.Fatalf("second whole-node job is %s with one node", j.State)
	}
	// A node added live takes the queued job.
	m.startAgent("a2")
	for _, id := range []uint64{j1, j2} {
		m.waitState(id, 60*time.Second, api.StateCompleted)
	}
	if n1, n2 := m.show(j1).Nodes, m.show(j2).Nodes; !slices.Equal(n1, []string{"a1"}) || !slices.Equal(n2, []string{"a2"}) {
		t.Errorf("jobs ran on %v and %v, want a1 then the new a2", n1, n2)
	}

	// Drained: nothing new lands there.
	if _, errOut, code := m.hpcsub("node", "drain", "a2", "--reason", "swap HBM"); code != 0 {
		t.Fatalf("drain: %s", errOut)
	}
	short := m.writeJob("short.hcl", markedJob("short", cpus, 0, ""))
	var ids []uint64
	for i := 0; i < 3; i++ {
		ids = append(ids, m.submit(short))
	}
	for _, id := range ids {
		if j := m.waitState(id, 60*time.Second, api.StateCompleted); !slices.Equal(j.Nodes, []string{"a1"}) {
			t.Errorf("job %d ran on %v while a2 was drained", id, j.Nodes)
		}
	}
	if n, _ := m.node("a2"); n.State != api.NodeDrained || n.Reason != "swap HBM" {
		t.Errorf("a2 is %s (%q)", n.State, n.Reason)
	}
	if _, errOut, code := m.hpcsub("node", "resume", "a2"); code != 0 {
		t.Fatalf("resume: %s", errOut)
	}

	// kill -9 of the agent running a job: NODE_FAIL, requeued, completed
	// on the other node.
	long := m.writeJob("long.hcl", markedJob("long", cpus, 3, "requeue = true"))
	id := m.submit(long)
	j := m.waitState(id, 30*time.Second, api.StateRunning)
	lost := j.Nodes[0]
	other := map[string]string{"a1": "a2", "a2": "a1"}[lost]
	m.kill9Agent(lost)
	j = m.waitState(id, 60*time.Second, api.StateCompleted)
	var hist []api.JobState
	for _, h := range j.History {
		hist = append(hist, h.State)
	}
	if !slices.Contains(hist, api.StateNodeFail) || j.Restarts != 1 || !slices.Equal(j.Nodes, []string{other}) {
		t.Errorf("after losing %s: nodes %v restarts %d history %v", lost, j.Nodes, j.Restarts, hist)
	}
	if n, _ := m.node(lost); n.State != api.NodeDown || !strings.Contains(n.Reason, "heartbeat") {
		t.Errorf("lost node is %s (%q)", n.State, n.Reason)
	}
	// Back: reconciled (the dead agent's copy is killed there), UP again.
	m.startAgent(lost)
}

func TestClusterServerCrashKeepsJobs(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	m.startAgent("a1")
	m.startAgent("a2")
	file := m.writeJob("whole.hcl", markedJob("whole", m.machineCPUs("a1"), 4, ""))
	var ids []uint64
	for i := 0; i < 4; i++ {
		ids = append(ids, m.submit(file))
	}
	m.waitState(ids[0], 30*time.Second, api.StateRunning)
	m.waitState(ids[1], 30*time.Second, api.StateRunning)
	m.killServer()
	time.Sleep(time.Second) // the agents notice and keep their jobs running
	m.startServer()
	for _, id := range ids {
		j := m.waitState(id, 90*time.Second, api.StateCompleted)
		runs := m.runsOf(id)
		if len(runs) != 2 || !strings.HasPrefix(runs[0], "start") || !strings.HasPrefix(runs[1], "end") || j.Restarts != 0 {
			t.Errorf("job %d: runs %v restarts %d: want exactly one run", id, runs, j.Restarts)
		}
	}
}

func TestClusterRefusesBadJoins(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	run := func(cmd *exec.Cmd) (string, int) {
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("agent %v did not give up", cmd.Args)
		}
		return fmt.Sprint(cmd.Stdout), cmd.ProcessState.ExitCode()
	}
	// No join file.
	cmd := m.agentCmd("n1")
	cmd.Args[slices.Index(cmd.Args, "--join")+1] = filepath.Join(m.base, "missing")
	if out, code := run(cmd); code == 0 || !strings.Contains(out, "join file") {
		t.Errorf("without a join file: exit %d: %s", code, out)
	}
	// A join file with a wrong secret.
	var jf api.JoinFile
	data, _ := os.ReadFile(m.join)
	json.Unmarshal(data, &jf)
	jf.Secret = strings.Repeat("0", 64)
	data, _ = json.Marshal(jf)
	bad := filepath.Join(m.base, "bad-join")
	os.WriteFile(bad, data, 0o600)
	cmd = m.agentCmd("n2")
	cmd.Args[slices.Index(cmd.Args, "--join")+1] = bad
	if out, code := run(cmd); code == 0 || !strings.Contains(out, "wrong cluster secret") {
		t.Errorf("with a wrong secret: exit %d: %s", code, out)
	}
	// Revoked: a removed node's agent can come back no more.
	m.startAgent("n3")
	m.hpcsub("node", "drain", "n3", "--reason", "retire")
	m.mu.Lock()
	a := m.agents["n3"]
	delete(m.agents, "n3")
	m.mu.Unlock()
	a.Process.Signal(syscall.SIGTERM)
	a.Wait()
	if _, errOut, code := m.hpcsub("node", "remove", "n3"); code != 0 {
		t.Fatalf("node remove: %s", errOut)
	}
	if out, code := run(m.agentCmd("n3")); code == 0 || !strings.Contains(out, "revoked") {
		t.Errorf("with a revoked certificate: exit %d: %s", code, out)
	}
	if _, ok := m.node("n3"); ok {
		t.Error("a revoked agent registered its node again")
	}
	if out, _, _ := m.hpcsub("nodes", "--json"); strings.Contains(out, "n1") || strings.Contains(out, "n2") {
		t.Errorf("refused agents appear among the nodes: %s", out)
	}
}

func TestClusterGangPartFailure(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	m.startAgent("a1")
	m.startAgent("a2")
	file := m.writeJob("gang.hcl", `job "gang" {
  walltime = "5m"
  nodes    = 2
  task {
    script = <<EOT
#!/bin/sh
echo "$HPC_NODE_RANK/$HPC_NNODES $HPC_NODELIST" > rank-$HPC_JOB_ID-$HPC_NODE_RANK
if [ "$HPC_NODE_RANK" = 1 ]; then sleep 1; exit 3; fi
sleep 25
EOT
  }
}
`)
	start := time.Now()
	id := m.submit(file)
	j := m.waitState(id, 60*time.Second, api.StateFailed)
	if time.Since(start) > 20*time.Second {
		t.Errorf("the gang's other part was not stopped: the job took %v", time.Since(start))
	}
	failed := j.Nodes[1]
	if !strings.Contains(j.Reason, failed) {
		t.Errorf("reason %q does not name the failed node %s", j.Reason, failed)
	}
	for rank := 0; rank < 2; rank++ {
		data, _ := os.ReadFile(filepath.Join(m.work, fmt.Sprintf("rank-%d-%d", id, rank)))
		want := fmt.Sprintf("%d/2 %s", rank, strings.Join(j.Nodes, ","))
		if strings.TrimSpace(string(data)) != want {
			t.Errorf("rank %d saw %q, want %q", rank, data, want)
		}
	}
}

// hpcsubEnv runs hpcsub as root with extra environment variables.
func (m *multiNode) hpcsubEnv(env []string, args ...string) (string, string, int) {
	m.t.Helper()
	return m.hpcsubEnvAs(nil, env, args...)
}

func (m *multiNode) hpcsubEnvAs(cred *syscall.Credential, env []string, args ...string) (string, string, int) {
	m.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hpcsub"), args...)
	cmd.Dir = m.work
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		m.t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestClusterLoginThroughAnAgentAndHTTPS(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	m.startAgent("a1")
	config := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + config}
	// Over HTTPS without a token: refused, with what to do.
	if _, errOut, code := m.hpcsubEnv(env, "--addr", m.addr, "nodes"); code == 0 || !strings.Contains(errOut, "hpcsub login") {
		t.Errorf("nodes over https without a token: exit %d: %s", code, errOut)
	}
	// The agent's socket vouches for the local uid, but not for an admin's:
	// a compromised node must not become root on the cluster.
	agentSock := "unix://" + filepath.Join(m.base, "agent-a1", "agent.sock")
	out, errOut, code := m.hpcsubEnv(env, "--addr", agentSock, "login")
	if code == 0 || !strings.Contains(errOut, "admin tokens are not issued through an agent") {
		t.Fatalf("root's login through the agent: exit %d: %s %s, want a refusal", code, out, errOut)
	}
	if err := os.Chown(config, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	out, errOut, code = m.hpcsubEnvAs(nobody, env, "--addr", agentSock, "login")
	if code != 0 || !strings.Contains(out, "token for nobody") {
		t.Fatalf("login through the agent: exit %d: %s %s", code, out, errOut)
	}
	st, err := os.Stat(filepath.Join(config, "hpc", "credentials.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials: %v %v", err, st)
	}
	out, errOut, code = m.hpcsubEnvAs(nobody, env, "--addr", m.addr, "nodes", "--json")
	if code != 0 || !strings.Contains(out, `"a1"`) {
		t.Fatalf("nodes over https with the token: exit %d: %s %s", code, out, errOut)
	}
	file := m.writeJob("hello.hcl", `job "hello" {
  walltime = "1m"
  task { script = "echo hello over https" }
}`)
	out, errOut, code = m.hpcsubEnvAs(nobody, env, "--addr", m.addr, "submit", "--wait", file)
	if code != 0 {
		t.Fatalf("submit over https: exit %d: %s %s", code, out, errOut)
	}
}
