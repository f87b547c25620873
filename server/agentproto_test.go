package server

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources"
)

// fakeExec is an agent.Executor that records what it is asked and ends
// jobs when the test says so (or at once on cancel).
type fakeExec struct {
	mu        sync.Mutex
	r         *agent.Runner
	launched  []api.Assignment
	cancelled []uint64
	released  []uint64
	signals   []string
	running   map[uint64]api.Assignment
}

func (f *fakeExec) Launch(_ context.Context, a api.Assignment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.launched = append(f.launched, a)
	f.running[a.JobID] = a
	return nil
}

func (f *fakeExec) finish(id uint64, state api.JobState, code int) {
	f.mu.Lock()
	a, ok := f.running[id]
	delete(f.running, id)
	f.mu.Unlock()
	if ok {
		f.r.Report(api.Outcome{JobID: id, State: state, ExitCode: code, Attempt: a.Attempt, End: time.Now()})
	}
}

func (f *fakeExec) Cancel(id uint64, reason string) error {
	f.mu.Lock()
	f.cancelled = append(f.cancelled, id)
	f.mu.Unlock()
	f.finish(id, api.StateCancelled, 137)
	return nil
}

func (f *fakeExec) Signal(id uint64, sig string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, sig)
	return nil
}

func (f *fakeExec) Release(id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	delete(f.running, id)
	return nil
}

func (f *fakeExec) snapshot() (launched, cancelled, released []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.launched {
		launched = append(launched, a.JobID)
	}
	return launched, slices.Clone(f.cancelled), slices.Clone(f.released)
}

// cuttable is a transport whose link the test can cut.
type cuttable struct {
	agent.Transport
	mu  sync.Mutex
	cut bool
}

var errCut = errors.New("network unreachable (test)")

func (c *cuttable) set(cut bool) { c.mu.Lock(); c.cut = cut; c.mu.Unlock() }
func (c *cuttable) isCut() bool  { c.mu.Lock(); defer c.mu.Unlock(); return c.cut }

func (c *cuttable) Register(ctx context.Context, req api.RegisterRequest) (api.RegisterResponse, error) {
	if c.isCut() {
		return api.RegisterResponse{}, errCut
	}
	return c.Transport.Register(ctx, req)
}

func (c *cuttable) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error) {
	if c.isCut() {
		return api.SyncResponse{}, errCut
	}
	return c.Transport.Sync(ctx, req)
}

// protoNode is one node whose agent runs the real protocol loop in process.
type protoNode struct {
	ex     *fakeExec
	r      *agent.Runner
	link   *cuttable
	cancel context.CancelFunc
	done   chan struct{}
}

// protoHarness is a server without the fake agent, for protocol nodes.
func protoHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, cfg: cfg, dbPath: filepath.Join(dir, "hpc.db"), cwd: dir}
	h.open(nil)
	t.Cleanup(h.close)
	return h
}

func (h *harness) startNode(name string, reg func(*api.NodeRegistration)) *protoNode {
	h.t.Helper()
	r := cpuNode(name)
	if reg != nil {
		reg(&r)
	}
	n := &protoNode{ex: &fakeExec{running: map[uint64]api.Assignment{}}, link: &cuttable{Transport: h.srv.InProcess(name)}, done: make(chan struct{})}
	n.r = agent.NewRunner(agent.Config{Node: r, Log: quietLog()}, n.link, n.ex)
	n.ex.r = n.r
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.r.Register(ctx); err != nil {
		h.t.Fatal(err)
	}
	go func() { defer close(n.done); n.r.Run(ctx) }()
	h.t.Cleanup(n.stop)
	return n
}

func (n *protoNode) stop() {
	n.cancel()
	<-n.done
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProtocolRunsAJobToCompletion(t *testing.T) {
	h := protoHarness(t, testConfig())
	n := h.startNode("p1", nil)
	id := h.submit(jobSrc(""))[0]
	h.schedule()
	eventually(t, "launch", func() bool { l, _, _ := n.ex.snapshot(); return slices.Contains(l, id) })
	n.ex.mu.Lock()
	a := n.ex.launched[0]
	n.ex.mu.Unlock()
	if a.Attempt == 0 || !slices.Equal(a.NodeList, []string{"p1"}) {
		t.Errorf("assignment attempt %d nodes %v", a.Attempt, a.NodeList)
	}
	n.ex.finish(id, api.StateCompleted, 0)
	eventually(t, "completion", func() bool { return h.state(id) == api.StateCompleted })
	eventually(t, "release", func() bool { _, _, r := n.ex.snapshot(); return slices.Contains(r, id) })
	nodes := h.srv.apiNodes()
	if len(nodes) != 1 || nodes[0].State != "IDLE" || nodes[0].AgentVersion != api.Version {
		t.Errorf("nodes %+v", nodes)
	}
}

func TestProtocolRefusesReplayedAndStaleSyncs(t *testing.T) {
	h := protoHarness(t, testConfig())
	ctx := context.Background()
	tr := h.srv.InProcess("p1")
	resp, err := tr.Register(ctx, api.RegisterRequest{Protocol: api.ProtocolVersion, Node: cpuNode("p1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sync(ctx, api.SyncRequest{Session: resp.Session, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  api.SyncRequest
	}{
		{"replayed", api.SyncRequest{Session: resp.Session, Seq: 1}},
		{"older", api.SyncRequest{Session: resp.Session, Seq: 0}},
		{"unknown session", api.SyncRequest{Session: "feed", Seq: 9}},
	} {
		if _, err := tr.Sync(ctx, c.req); !errors.Is(err, api.ErrSessionLost) {
			t.Errorf("%s sync: %v, want ErrSessionLost", c.name, err)
		}
	}
	// A new registration replaces the session: the old one is stale.
	if _, err := tr.Register(ctx, api.RegisterRequest{Protocol: api.ProtocolVersion, Node: cpuNode("p1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sync(ctx, api.SyncRequest{Session: resp.Session, Seq: 2}); !errors.Is(err, api.ErrSessionLost) {
		t.Errorf("sync of a replaced session: %v", err)
	}
}

func TestProtocolIgnoresOutcomesOfJobsNotGivenToTheNode(t *testing.T) {
	h := protoHarness(t, testConfig())
	p1 := h.startNode("p1", nil)
	h.startNode("p2", func(r *api.NodeRegistration) { r.CPUIDs = r.CPUIDs[:1] })
	id := h.submit(jobSrc(""))[0] // 1 CPU: the best fit is p2
	h.schedule()
	j := h.job(id)
	if j.State != api.StateRunning || j.Alloc[0].Node != "p2" {
		t.Fatalf("job %s on %v", j.State, j.nodeNames())
	}
	ctx := context.Background()
	p1.stop() // the test speaks for p1 now
	tr := h.srv.InProcess("p1")
	resp, err := tr.Register(ctx, api.RegisterRequest{Protocol: api.ProtocolVersion, Node: cpuNode("p1")})
	if err != nil {
		t.Fatal(err)
	}
	outs := []api.Outcome{
		{JobID: id, State: api.StateFailed, ExitCode: 1},             // runs on p2
		{JobID: 999, State: api.StateCompleted},                      // never given
		{JobID: id, Node: "p2", State: api.StateFailed, ExitCode: 1}, // claims another node
	}
	sres, err := tr.Sync(ctx, api.SyncRequest{Session: resp.Session, Seq: 1, Outcomes: outs})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.job(id); got.State != api.StateRunning || len(got.History) != len(j.History) {
		t.Errorf("job changed by foreign outcomes: %s %v", got.State, states(got.History))
	}
	var released []uint64
	for _, c := range sres.Commands {
		if c.Kind == api.CommandRelease {
			released = append(released, c.JobID)
		}
	}
	slices.Sort(released) // outcomes of one sync are taken side by side
	if !slices.Equal(released, []uint64{id, 999}) {
		t.Errorf("released %v: the agent should forget what is not its own", released)
	}
}

func TestProtocolRejectsBadInput(t *testing.T) {
	h := protoHarness(t, testConfig())
	ctx := context.Background()
	good := func() api.RegisterRequest {
		return api.RegisterRequest{Protocol: api.ProtocolVersion, Node: cpuNode("p1")}
	}
	cases := []struct {
		name   string
		id     string
		mutate func(*api.RegisterRequest)
		status int
	}{
		{"wrong protocol", "", func(r *api.RegisterRequest) { r.Protocol = 99 }, 400},
		{"bad name", "", func(r *api.RegisterRequest) { r.Node.Name = "../etc" }, 400},
		{"no CPUs", "", func(r *api.RegisterRequest) { r.Node.CPUIDs = nil }, 400},
		{"repeated CPU", "", func(r *api.RegisterRequest) { r.Node.CPUIDs = []int{1, 1} }, 400},
		{"negative memory", "", func(r *api.RegisterRequest) { r.Node.Memory = -1 }, 400},
		{"absurd memory", "", func(r *api.RegisterRequest) { r.Node.Memory = 1 << 62 }, 400},
		{"repeated GPU", "", func(r *api.RegisterRequest) { r.Node.GPUs = []api.GPU{{Index: 0}, {Index: 0}} }, 400},
		{"ragged links", "", func(r *api.RegisterRequest) {
			r.Node.GPUs = []api.GPU{{Index: 0}, {Index: 1}}
			r.Node.Links = [][]resources.Link{{0, 1}}
		}, 400},
		{"feature with space", "", func(r *api.RegisterRequest) { r.Node.Features = []string{"a b"} }, 400},
		{"bad ended outcome", "", func(r *api.RegisterRequest) { r.Ended = []api.Outcome{{JobID: 1, State: "RUNNING"}} }, 400},
		{"certificate of another node", "p9", func(r *api.RegisterRequest) {}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := good()
			c.mutate(&req)
			_, err := h.srv.AgentRegister(ctx, AgentIdentity{Node: c.id}, req)
			var re *requestError
			if !errors.As(err, &re) || re.status != c.status {
				t.Fatalf("got %v, want status %d", err, c.status)
			}
			if len(h.srv.apiNodes()) != 0 {
				t.Fatal("a refused registration created a node")
			}
		})
	}
	resp, err := h.srv.AgentRegister(ctx, AgentIdentity{}, good())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []api.SyncRequest{
		{Session: resp.Session, Seq: 1, Wait: time.Hour},
		{Session: resp.Session, Seq: 1, Outcomes: []api.Outcome{{JobID: 0, State: api.StateCompleted}}},
		{Session: resp.Session, Seq: 1, Outcomes: []api.Outcome{{JobID: 1, State: api.StateCompleted, ExitCode: 9999}}},
		{Session: resp.Session, Seq: 1, GPUHealth: []api.GPUHealth{{Index: -1}}},
	} {
		if _, err := h.srv.AgentSync(ctx, AgentIdentity{Node: "p1"}, req); err == nil {
			t.Errorf("sync %+v accepted", req)
		} else if re := (*requestError)(nil); !errors.As(err, &re) || re.status != http.StatusBadRequest {
			t.Errorf("sync %+v: %v, want 400", req, err)
		}
	}
}

func TestDownNodeFailsOrRequeuesItsJobs(t *testing.T) {
	cfg := testConfig()
	cfg.DownTimeout = time.Minute // the test moves the clock itself
	h := protoHarness(t, cfg)
	n := h.startNode("p1", nil)
	plain := h.submit(jobSrc(""))[0]
	requeue := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	eventually(t, "launches", func() bool { l, _, _ := n.ex.snapshot(); return len(l) == 2 })
	n.stop() // the agent goes silent
	h.srv.checkHeartbeats(time.Now().Add(cfg.DownTimeout / 2))
	if st := h.state(plain); st != api.StateRunning {
		t.Fatalf("before the timeout the job is %s", st)
	}
	h.srv.checkHeartbeats(time.Now().Add(cfg.DownTimeout + time.Second))
	if j := h.job(plain); j.State != api.StateNodeFail {
		t.Errorf("plain job %s %q", j.State, j.Reason)
	}
	j := h.job(requeue)
	if j.State != api.StatePending || j.Restarts != 1 || !slices.Contains(states(j.History), api.StateNodeFail) {
		t.Errorf("requeue job %s restarts %d history %v", j.State, j.Restarts, states(j.History))
	}
	nodes := h.srv.apiNodes()
	if nodes[0].State != "DOWN" || nodes[0].Reason == "" {
		t.Errorf("node %s %q", nodes[0].State, nodes[0].Reason)
	}
	// Stored: a restarted server still shows both outcomes.
	h.restart(nil)
	if h.state(plain) != api.StateNodeFail || h.state(requeue) != api.StatePending {
		t.Errorf("after restart: %s %s", h.state(plain), h.state(requeue))
	}
}

func TestReturningAgentIsReconciled(t *testing.T) {
	cfg := testConfig()
	cfg.DownTimeout = time.Minute
	h := protoHarness(t, cfg)
	n1 := h.startNode("p1", nil)
	keep := h.submit(jobSrc(""))[0]
	moved := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	eventually(t, "launches", func() bool { l, _, _ := n1.ex.snapshot(); return len(l) == 2 })
	// p1 falls silent; the server requeues `moved` onto p2 and fails `keep`.
	n1.link.set(true)
	h.srv.checkHeartbeats(time.Now().Add(2 * cfg.DownTimeout))
	n2 := h.startNode("p2", nil)
	h.schedule()
	eventually(t, "relaunch on p2", func() bool { l, _, _ := n2.ex.snapshot(); return slices.Contains(l, moved) })
	// p1 comes back: both jobs it still runs are killed there.
	n1.link.set(false)
	eventually(t, "reconcile kills", func() bool {
		_, _, r := n1.ex.snapshot()
		return slices.Contains(r, keep) && slices.Contains(r, moved)
	})
	if mj := h.job(moved); mj.State != api.StateRunning || mj.Alloc[0].Node != "p2" {
		t.Errorf("moved job %s on %v", mj.State, mj.Alloc)
	}
	// An adopted job: p2 restarts its runner while its job runs.
	n2.stop()
	n2b := &protoNode{ex: n2.ex, link: &cuttable{Transport: h.srv.InProcess("p2")}, done: make(chan struct{})}
	n2b.r = agent.NewRunner(agent.Config{Node: cpuNode("p2"), Log: quietLog()}, n2b.link, n2b.ex)
	n2b.ex.mu.Lock()
	n2b.ex.r = n2b.r
	n2b.ex.mu.Unlock()
	n2b.r.Adopted(moved)
	if err := n2b.r.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, rel := n2b.ex.snapshot()
	if slices.Contains(rel, moved) || h.state(moved) != api.StateRunning {
		t.Errorf("adopted job was killed (%v) or ended (%s)", rel, h.state(moved))
	}
}

func TestAgentFencesItselfWhenCutOff(t *testing.T) {
	cfg := testConfig()
	cfg.DownTimeout = 400 * time.Millisecond
	cfg.Heartbeat = 50 * time.Millisecond
	h := protoHarness(t, cfg)
	n := h.startNode("p1", nil)
	plain := h.submit(jobSrc(""))[0]
	requeue := h.submit(jobSrc("  requeue = true"))[0]
	h.schedule()
	eventually(t, "launches", func() bool { l, _, _ := n.ex.snapshot(); return len(l) == 2 })
	n.link.set(true)
	eventually(t, "self-fencing", func() bool { _, c, _ := n.ex.snapshot(); return slices.Contains(c, requeue) })
	// The server has not marked the node DOWN yet when the agent fences:
	// the old copy is gone before the server may start a new one.
	if _, c, _ := n.ex.snapshot(); slices.Contains(c, plain) {
		t.Errorf("a job that is not requeued was stopped: %v", c)
	}
	n.link.set(false)
	// Back: the fenced job's outcome reaches the server; whatever the
	// server decided meanwhile stands.
	eventually(t, "requeued", func() bool {
		h.srv.checkHeartbeats(time.Now())
		return h.state(requeue) == api.StatePending || h.state(requeue) == api.StateRunning
	})
}

func TestGPUHealthAndDrainKeepGPUsFromThePlacer(t *testing.T) {
	h := protoHarness(t, testConfig())
	var mu sync.Mutex
	health := []api.GPUHealth{{Index: 0, Healthy: true}, {Index: 1, Healthy: true}}
	reg := func(r *api.NodeRegistration) {
		r.GPUs = []api.GPU{{Index: 0, Model: "H100", Memory: 80 << 30}, {Index: 1, Model: "H100", Memory: 80 << 30}}
	}
	r := cpuNode("g1")
	reg(&r)
	ex := &fakeExec{running: map[uint64]api.Assignment{}}
	runner := agent.NewRunner(agent.Config{Node: r, Log: quietLog(), Health: func() []api.GPUHealth {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(health)
	}}, h.srv.InProcess("g1"), ex)
	ex.r = runner
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go runner.Run(ctx)
	mu.Lock()
	health[1] = api.GPUHealth{Index: 1, Reason: "XID 79 (GPU has fallen off the bus)"}
	mu.Unlock()
	eventually(t, "unhealthy GPU shown", func() bool {
		n := h.srv.apiNodes()[0]
		return n.GPUs[1].OutOfService != ""
	})
	h.srv.mu.Lock()
	pn := h.srv.placementNodesLocked()[0]
	h.srv.mu.Unlock()
	if len(pn.GPUs) != 1 || pn.GPUs[0].ID != 0 {
		t.Errorf("placer sees GPUs %+v, want only GPU 0", pn.GPUs)
	}
}
