package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// An agent killed with kill -9 leaves its requeueable job running under
// the shim, which fences it when the agent's lease runs out, before the
// server marks the node DOWN and starts the job on another node: the old
// copy's last sign of life comes before the new copy's first, and the job
// completes exactly once.
func TestClusterDeadAgentLeaseFencesTheOldCopy(t *testing.T) {
	m := startMultiNode(t, "127.0.0.1")
	m.startAgent("a1")
	file := writeTicksJob(m, m.machineCPUs("a1"))
	id := m.submit(file)
	m.waitState(id, 30*time.Second, api.StateRunning)
	m.startAgent("a2")
	ticksFile := filepath.Join(m.work, fmt.Sprintf("ticks-%d", id))
	waitFor(t, 30*time.Second, func() bool {
		return ticksSoFar(ticksFile) >= 3 // a1's copy is under way
	})

	m.kill9Agent("a1") // the agent only: its job lives on under the shim
	j := m.waitState(id, 90*time.Second, api.StateCompleted)
	if j.Restarts != 1 || len(j.Nodes) != 1 || j.Nodes[0] != "a2" {
		t.Errorf("job restarts %d nodes %v, want one restart, on a2", j.Restarts, j.Nodes)
	}
	checkOldCopyStoppedFirst(t, ticksFile)
	// a1 comes back: it finds the fenced job's result, the server (which
	// has run the job elsewhere) has it released; a1 is UP again.
	m.startAgent("a1")
	waitFor(t, 60*time.Second, func() bool {
		n, _ := m.node("a1")
		return n.State == api.NodeIdle
	})
	if j := m.show(id); j.State != api.StateCompleted || j.Restarts != 1 {
		t.Errorf("after a1's return the job is %s with %d restarts", j.State, j.Restarts)
	}
}

// ticksSoFar counts the tick lines of a file that may not exist yet.
func ticksSoFar(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "tick ")
}
