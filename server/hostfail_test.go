package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

const requeueSrc = "  requeue = true"

// Found as: "could not start on vm: write .../exec/7/job.sh: no space left
// on device" ended jobs FAILED (exit 1), no requeue, node not drained.
// A launch the node could not carry out is the node's failure.
func TestLaunchFailureIsTheNodes(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []api.JobState
		restart int
	}{
		{"requeue allowed: back to the queue, no restart used", jobSrc(requeueSrc), []api.JobState{api.StatePending, api.StateRunning, api.StateNodeFail, api.StateRequeued, api.StatePending}, 0},
		{"requeue not allowed: NODE_FAIL, not FAILED", jobSrc(""), []api.JobState{api.StatePending, api.StateRunning, api.StateNodeFail}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DrainAfterHostFailures = -1 // this test is about the job
			h := newHarness(t, cfg)
			h.agent.launchErr = errors.New("write /x/exec/7/job.sh: no space left on device")
			id := h.submit(tt.src)[0]
			h.schedule()
			j := h.job(id)
			checkHistory(t, j, tt.want...)
			if j.Restarts != tt.restart || j.ExitCode != nil {
				t.Errorf("restarts %d exit %v: a host failure uses no restart and records no exit code of the job", j.Restarts, j.ExitCode)
			}
			if r := j.History[2].Reason; !strings.Contains(r, "no space left on device") || !strings.Contains(r, "host failure on n1") {
				t.Errorf("reason %q does not say the node failed and why", r)
			}
		})
	}
}

// One sick node must not eat the queue: after N host failures in a row
// it is drained with the reason; a launch that works in between resets
// the count.
func TestNodeDrainedAfterHostFailuresInARow(t *testing.T) {
	cfg := testConfig()
	cfg.DrainAfterHostFailures = 2
	h := newHarness(t, cfg)
	var logged lockedBuffer
	h.srv.log = slog.New(slog.NewTextHandler(&logged, nil))
	ctx := context.Background()
	nodeState := func() api.Node {
		t.Helper()
		ns, err := h.client.Nodes(ctx)
		if err != nil || len(ns) != 1 {
			t.Fatalf("nodes: %v %v", ns, err)
		}
		return ns[0]
	}

	h.agent.launchErr = errors.New("pipe2: too many open files")
	first := h.submit(jobSrc(requeueSrc))[0]
	h.schedule() // one failure
	h.agent.launchErr = nil
	h.schedule() // the same job starts: the node works
	if st := h.state(first); st != api.StateRunning {
		t.Fatalf("job %d is %s after a launch that worked", first, st)
	}
	h.agent.launchErr = errors.New("pipe2: too many open files")
	second := h.submit(jobSrc(requeueSrc))[0]
	h.schedule() // one failure again, not two in a row
	if n := nodeState(); n.State == api.NodeDrained || n.State == api.NodeDraining {
		t.Fatalf("node %s after failures that were not in a row", n.State)
	}
	h.schedule() // second in a row: drained
	n := nodeState()
	if n.State != api.NodeDraining || !strings.Contains(n.Reason, "2 host failures in a row") || !strings.Contains(n.Reason, "too many open files") {
		t.Fatalf("node %s (%q), want DRAINING (job %d still runs) with the cause", n.State, n.Reason, first)
	}
	if l := logged.String(); !strings.Contains(l, "host failure") || !strings.Contains(l, "too many open files") || !strings.Contains(l, "node drained") {
		t.Errorf("the daemon's log does not tell of the host failures and the drain:\n%s", l)
	}
	before := len(h.agent.launchedIDs())
	h.schedule()
	if got := h.agent.launchedIDs(); len(got) != before {
		t.Fatalf("a drained node got launches: %v", got)
	}
	if j := h.job(second); j.State != api.StatePending || j.Restarts != 0 {
		t.Fatalf("job %d %s restarts %d, want PENDING with its restarts unused", second, j.State, j.Restarts)
	}
	// The drain is durable, like an admin's.
	h.restart(&fakeAgent{})
	if n := nodeState(); !strings.Contains(n.Reason, "host failures in a row") {
		t.Fatalf("after a restart the node is %s (%q)", n.State, n.Reason)
	}
}

// Found as: `kill -9` of a job's shim ended the job FAILED even with
// requeue = true. A supervisor that died is the node's failure.
func TestSupervisorDiedIsAHostFailure(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want api.JobState
	}{
		{"requeue = true: requeued", jobSrc(requeueSrc), api.StatePending},
		{"requeue = false: NODE_FAIL", jobSrc(""), api.StateNodeFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			id := h.submit(tt.src)[0]
			h.schedule()
			h.srv.Report(api.Outcome{JobID: id, Node: "n1", State: api.StateFailed, ExitCode: 1, HostFailure: true,
				Reason: "the job's supervisor (shim) died; the job was killed"})
			j := h.job(id)
			if j.State != tt.want || j.Restarts != 0 || j.ExitCode != nil {
				t.Fatalf("job %s restarts %d exit %v, want %s, no restart used, no exit code", j.State, j.Restarts, j.ExitCode, tt.want)
			}
			if !slices.Contains(h.agent.released, id) {
				t.Errorf("the agent was not told to forget job %d", id)
			}
		})
	}
}

// Found as: jobs that exited 0 while the data disk was full showed
// NODE_FAIL, and after a restart FAILED. Now an outcome that can't be
// stored leaves the job RUNNING (the agent keeps the outcome) and is
// stored as it was once the disk has room again.
func TestExitWithFullDiskCompletesOnceSpaceReturns(t *testing.T) {
	disk := newSmallDisk(t, "4m")
	h := newHarnessOn(t, testConfig(), disk.dir)
	id := h.submit(bigJobSrc())[0]
	h.schedule()
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("job %s, want RUNNING", st)
	}
	disk.fill()
	release := exhaustStore(t, h)
	h.report(id, api.StateCompleted, 0)
	if j := h.job(id); j.State != api.StateRunning || j.ExitCode != nil {
		t.Fatalf("with a full disk the job shows %s exit %v: an outcome that was not stored must not show", j.State, j.ExitCode)
	}
	if slices.Contains(h.agent.released, id) {
		t.Fatal("the agent was told to forget an outcome that was not stored")
	}
	h.srv.retryUnstored() // still full: kept for later
	if st := h.state(id); st != api.StateRunning {
		t.Fatalf("job %s while the disk is still full", st)
	}
	disk.free()
	release()
	h.srv.retryUnstored()
	j := h.job(id)
	if j.State != api.StateCompleted || j.ExitCode == nil || *j.ExitCode != 0 {
		t.Fatalf("once space returned: %s exit %v, want COMPLETED exit 0", j.State, j.ExitCode)
	}
	h.restart(&fakeAgent{})
	if j := h.job(id); j.State != api.StateCompleted {
		t.Fatalf("after a restart: %s", j.State)
	}
}

// lockedBuffer is a log destination several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A job's own end on the node also ends its run of host failures (remote
// agents only queue a launch, so their launches can't tell).
func TestJobsOwnEndResetsHostFailures(t *testing.T) {
	cfg := testConfig()
	cfg.DrainAfterHostFailures = 2
	h := newHarness(t, cfg)
	var ids []uint64
	for i := 0; i < 3; i++ {
		ids = append(ids, h.submit(jobSrc(requeueSrc))[0])
	}
	h.schedule() // all three run
	h.srv.Report(api.Outcome{JobID: ids[0], Node: "n1", State: api.StateFailed, HostFailure: true, Reason: "shim died"})
	h.report(ids[1], api.StateCompleted, 0)
	h.srv.Report(api.Outcome{JobID: ids[2], Node: "n1", State: api.StateFailed, HostFailure: true, Reason: "shim died"})
	ns, err := h.client.Nodes(context.Background())
	if err != nil || ns[0].State == api.NodeDrained || ns[0].State == api.NodeDraining {
		t.Fatalf("node %+v (%v): two host failures with a job's own end between are not in a row", ns, err)
	}
}
