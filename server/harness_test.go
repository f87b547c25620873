package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// fakeAgent records what the server asks of a node and answers Reconcile
// from its lost set. It implements Agent and Reconciler.
type fakeAgent struct {
	mu         sync.Mutex
	launched   []api.Assignment
	cancels    []uint64
	released   []uint64
	reconciled [][]uint64
	lost       map[uint64]bool // Reconcile reports these as gone
	launchErr  error
	// onRelease, when set, runs inside Release before it returns.
	onRelease func(id uint64)
	// onLaunch, when set, runs inside Launch before it returns.
	onLaunch func(a api.Assignment)
	// onCancel, when set, runs (outside the server's lock) after a Cancel
	// is recorded: tests use it to report the kill's outcome.
	onCancel func(id uint64)
	// ckpts records checkpoint requests (checkpoint_test.go).
	ckpts []ckptCall
}

func (f *fakeAgent) Launch(_ context.Context, a api.Assignment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.launchErr != nil {
		return f.launchErr
	}
	f.launched = append(f.launched, a)
	if f.onLaunch != nil {
		f.onLaunch(a)
	}
	return nil
}

func (f *fakeAgent) Cancel(id uint64, _ string) error {
	f.mu.Lock()
	f.cancels = append(f.cancels, id)
	cb := f.onCancel
	f.mu.Unlock()
	if cb != nil {
		cb(id)
	}
	return nil
}

func (f *fakeAgent) Release(id uint64) error {
	f.mu.Lock()
	f.released = append(f.released, id)
	cb := f.onRelease
	f.mu.Unlock()
	if cb != nil {
		cb(id)
	}
	return nil
}

func (f *fakeAgent) Reconcile(running []uint64) ([]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reconciled = append(f.reconciled, slices.Clone(running))
	var lost []uint64
	for _, id := range running {
		if f.lost[id] {
			lost = append(lost, id)
		}
	}
	return lost, nil
}

func (f *fakeAgent) launchedIDs() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []uint64
	for _, a := range f.launched {
		ids = append(ids, a.JobID)
	}
	return ids
}

func (f *fakeAgent) cancelled() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cancels)
}

const gib = int64(1) << 30

// cpuNode is an 8-CPU, 16 GiB node without GPUs.
func cpuNode(name string) api.NodeRegistration {
	return api.NodeRegistration{Name: name, CPUIDs: []int{0, 1, 2, 3, 4, 5, 6, 7}, Memory: 16 * gib, Isolation: "none"}
}

// harness is one server on a real store, one fake agent and a client over
// a real Unix socket (so peer credentials are the kernel's).
type harness struct {
	t      *testing.T
	cfg    Config
	dbPath string
	st     *store.Store
	srv    *Server
	agent  *fakeAgent
	reg    api.NodeRegistration
	hs     *http.Server
	sock   string
	client *api.Client
	cwd    string
	// entered, when it holds a channel, hears the path of every request
	// as it reaches the server.
	entered atomic.Value
}

func testConfig() Config {
	return Config{AllowRoot: true, DefaultWalltime: time.Hour}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, cfg: cfg, dbPath: filepath.Join(dir, "hpc.db"), cwd: dir, reg: cpuNode("n1")}
	h.open(&fakeAgent{})
	t.Cleanup(h.close)
	return h
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open starts a server on the harness's store with agent attached.
func (h *harness) open(a *fakeAgent) {
	t := h.t
	t.Helper()
	st, err := store.Open(h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(h.cfg, st, quietLog())
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	h.st, h.srv, h.agent = st, srv, a
	if a != nil {
		if err := srv.AttachAgent(h.reg, a); err != nil {
			t.Fatal(err)
		}
	}
	sockDir, err := os.MkdirTemp("", "s")
	if err != nil {
		t.Fatal(err)
	}
	h.sock = filepath.Join(sockDir, "hpcd.sock")
	ln, err := net.Listen("unix", h.sock)
	if err != nil {
		t.Fatal(err)
	}
	handler := srv.Handler()
	h.hs = &http.Server{ConnContext: ConnContext, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ch, ok := h.entered.Load().(chan string); ok {
			select {
			case ch <- r.URL.Path:
			default:
			}
		}
		handler.ServeHTTP(w, r)
	})}
	go h.hs.Serve(ln)
	h.client, err = api.NewClient("unix://" + h.sock)
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) close() {
	if h.hs == nil {
		return
	}
	h.hs.Close()
	os.RemoveAll(filepath.Dir(h.sock))
	h.st.Close()
	h.hs = nil
}

// restart closes everything and opens a NEW server on the same store,
// attaching a (the new node agent; nil attaches none).
func (h *harness) restart(a *fakeAgent) {
	h.close()
	h.open(a)
}

func (h *harness) submitReq(src string) api.SubmitRequest {
	return api.SubmitRequest{Filename: filepath.Join(h.cwd, "job.hcl"), Source: src, Cwd: h.cwd}
}

// submit sends src through the socket and fails the test on refusal.
func (h *harness) submit(src string) []uint64 {
	h.t.Helper()
	resp, err := h.client.Submit(context.Background(), h.submitReq(src))
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return resp.IDs
}

func (h *harness) schedule() {
	h.srv.scheduleOnce(context.Background(), time.Now())
	h.srv.launches.Wait()
}

// job returns a copy of the server's record of id.
func (h *harness) job(id uint64) job {
	h.t.Helper()
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	j, ok := h.srv.jobs[id]
	if !ok {
		h.t.Fatalf("no job %d", id)
	}
	return *j
}

func (h *harness) state(id uint64) api.JobState { return h.job(id).State }

func (h *harness) report(id uint64, state api.JobState, code int) {
	h.srv.Report(api.Outcome{JobID: id, Node: h.reg.Name, State: state, ExitCode: code,
		Reason: "test outcome", Usage: api.Usage{ElapsedSeconds: 10, CPUSeconds: 5, PeakMemory: 1 << 20}})
}

func (h *harness) jobCount() int {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return len(h.srv.jobs)
}

// apiStatus returns the HTTP status of err (0 for nil, -1 for a non-API error).
func apiStatus(err error) int {
	if err == nil {
		return 0
	}
	var ae *api.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return -1
}

// states lists the states of a job's history in order.
func states(hist []api.Transition) []api.JobState {
	var out []api.JobState
	for _, tr := range hist {
		out = append(out, tr.State)
	}
	return out
}

// jobSrc is a minimal valid job file with extra attributes/blocks in the job block.
func jobSrc(extra string) string {
	return "job \"t\" {\n" + extra + "\n  task {\n    command = \"/bin/true\"\n  }\n}\n"
}
