package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// netns is a network namespace joined to the host's by a veth pair: the
// host side is hostIP, the namespace side nsIP; cutting the host side
// cuts the namespace off (packets are dropped, nothing is reset).
type netns struct {
	name, hostIf, hostIP, nsIP string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip(8) on this machine: the partition test needs network namespaces")
	}
	sub := rand.IntN(250) + 1
	id := strconv.Itoa(os.Getpid()%10000) + strconv.Itoa(sub)
	n := &netns{name: "hpc-part-" + id, hostIf: "hph" + id, hostIP: fmt.Sprintf("10.213.%d.1", sub), nsIP: fmt.Sprintf("10.213.%d.2", sub)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.name)
	t.Cleanup(func() {
		exec.Command(ip, "link", "del", n.hostIf).Run()
		exec.Command(ip, "netns", "del", n.name).Run()
	})
	run("link", "add", n.hostIf, "type", "veth", "peer", "name", "hpn"+id)
	run("link", "set", "hpn"+id, "netns", n.name)
	run("addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	run("link", "set", n.hostIf, "up")
	run("-n", n.name, "addr", "add", n.nsIP+"/30", "dev", "hpn"+id)
	run("-n", n.name, "link", "set", "hpn"+id, "up")
	run("-n", n.name, "link", "set", "lo", "up")
	return n
}

func (n *netns) setLink(t *testing.T, up bool) {
	t.Helper()
	state := map[bool]string{true: "up", false: "down"}[up]
	if out, err := exec.Command("ip", "link", "set", n.hostIf, state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s %s: %v: %s", n.hostIf, state, err, out)
	}
}

// tick is one line of a job's progress: which node, when (ns).
type tick struct {
	node string
	at   int64
}

func readTicks(t *testing.T, path string) (ticks []tick, ends []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "tick":
			at, _ := strconv.ParseInt(f[2], 10, 64)
			ticks = append(ticks, tick{f[1], at})
		case len(f) == 2 && f[0] == "end":
			ends = append(ends, f[1])
		}
	}
	return ticks, ends
}

// writeTicksJob writes a requeueable job of cpus CPUs that appends a
// "tick NODE NS" line to ticks-JOBID every 0.1 s for 6 s, then "end NODE".
func writeTicksJob(m *multiNode, cpus int) string {
	return m.writeJob("ticks.hcl", fmt.Sprintf(`job "ticks" {
  walltime = "5m"
  requeue  = true
  resources { cpus = %d }
  task {
    script = <<EOT
#!/bin/sh
i=0
while [ $i -lt 60 ]; do
  echo "tick $HPC_NODELIST $(date +%%s%%N)" >> ticks-$HPC_JOB_ID
  sleep 0.1
  i=$((i+1))
done
echo "end $HPC_NODELIST" >> ticks-$HPC_JOB_ID
EOT
  }
}
`, cpus))
}

// checkOldCopyStoppedFirst reads a writeTicksJob file of a job first run on
// a1 and then requeued to a2: exactly one run completed, on a2, and the old
// copy's last tick comes before the new copy's first.
func checkOldCopyStoppedFirst(t *testing.T, ticksFile string) {
	t.Helper()
	ticks, ends := readTicks(t, ticksFile)
	if len(ends) != 1 || ends[0] != "a2" {
		t.Errorf("runs that completed: %v, want exactly one, on a2", ends)
	}
	var lastOld, firstNew int64
	for _, tk := range ticks {
		switch tk.node {
		case "a1":
			lastOld = max(lastOld, tk.at)
		case "a2":
			if firstNew == 0 || tk.at < firstNew {
				firstNew = tk.at
			}
		}
	}
	if lastOld == 0 || firstNew == 0 {
		t.Fatalf("ticks of the old copy (%d) or the new (%d) are missing", lastOld, firstNew)
	}
	if lastOld >= firstNew {
		t.Errorf("the old copy on a1 was still running %v after the new one started on a2", time.Duration(lastOld-firstNew))
	}
	t.Logf("old copy's last tick %v before the new copy's first", time.Duration(firstNew-lastOld))
}

// An agent cut off from the server for longer than the DOWN timeout stops
// its requeueable job itself; the server requeues it on another node; when
// the link is back nothing runs twice: the old copy's last sign of life
// comes before the new copy's first, and the job completes exactly once.
func TestClusterPartitionFencesTheOldCopy(t *testing.T) {
	ns := newNetns(t)
	m := startMultiNode(t, ns.hostIP)
	// a1 lives in the namespace, behind the veth; a2 on the host.
	cmd := m.agentCmd("a1")
	cmd.Args = append([]string{"ip", "netns", "exec", ns.name}, cmd.Args...)
	cmd.Path, _ = exec.LookPath("ip")
	m.startAgentCmd("a1", cmd)
	file := writeTicksJob(m, m.machineCPUs("a1"))
	id := m.submit(file)
	m.waitState(id, 30*time.Second, api.StateRunning)
	m.startAgent("a2")
	time.Sleep(500 * time.Millisecond) // a1's copy is under way

	ns.setLink(t, false)
	// The server marks a1 DOWN and starts the job again on a2.
	waitFor(t, 60*time.Second, func() bool {
		j := m.show(id)
		return j.State == api.StateRunning && len(j.Nodes) == 1 && j.Nodes[0] == "a2"
	})
	if n, _ := m.node("a1"); n.State != api.NodeDown {
		t.Errorf("cut-off a1 is %s", n.State)
	}
	time.Sleep(2 * time.Second) // cut off well past the DOWN timeout
	ns.setLink(t, true)

	j := m.waitState(id, 90*time.Second, api.StateCompleted)
	if j.Restarts != 1 || j.Nodes[0] != "a2" {
		t.Errorf("job restarts %d nodes %v", j.Restarts, j.Nodes)
	}
	checkOldCopyStoppedFirst(t, filepath.Join(m.work, fmt.Sprintf("ticks-%d", id)))
	// a1 comes back and is reconciled: UP, nothing of the job left there.
	waitFor(t, 60*time.Second, func() bool {
		n, _ := m.node("a1")
		return n.State == api.NodeIdle
	})
	if strings.Contains(m.logs["a1"].String(), "panic") {
		t.Errorf("a1 log:\n%s", m.logs["a1"])
	}
}
