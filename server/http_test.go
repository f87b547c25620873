package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// raw sends body to the harness's socket as is and decodes the error body.
func (h *harness) raw(method, path string, body []byte) (int, api.Error) {
	h.t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", h.sock)
	}}}
	req, err := http.NewRequest(method, "http://hpcd"+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &e)
	return resp.StatusCode, e
}

// as serves one request through the handler as caller uid, without a socket.
func (h *harness) as(uid uint32, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req = req.WithContext(context.WithValue(req.Context(), callerKey{}, Caller{UID: uid, GID: uid}))
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitRefusals(t *testing.T) {
	gpuJob := jobSrc("  resources {\n    gpu {\n      count = 1\n    }\n  }")
	cases := []struct {
		name     string
		cfg      func(*Config)
		body     func(h *harness) []byte
		status   int
		contains string
		diag     string // prefix of a diagnostics line
	}{
		{name: "malformed JSON", status: 400, contains: "malformed JSON",
			body: func(*harness) []byte { return []byte(`{"filename":`) }},
		{name: "unknown field", status: 400, contains: "unknown field",
			body: func(h *harness) []byte {
				return []byte(`{"filename":"/j.hcl","source":"","cwd":"/","bogus":1}`)
			}},
		{name: "trailing data after the object", status: 400, contains: "malformed JSON",
			body: func(h *harness) []byte {
				return append(mustJSON(t, h.submitReq(jobSrc(""))), []byte(` {"x":1}`)...)
			}},
		{name: "HCL error", status: 400, contains: "error(s)", diag: "job.hcl:2:3",
			body: func(h *harness) []byte { return mustJSON(t, h.submitReq(jobSrc("  cpuz = 1"))) }},
		{name: "cpus larger than any node", status: 422, contains: "never run",
			body: func(h *harness) []byte {
				return mustJSON(t, h.submitReq(jobSrc("  resources {\n    cpus = 64\n  }")))
			}},
		{name: "GPU job on GPU-less cluster", status: 422, contains: "never run",
			body: func(h *harness) []byte { return mustJSON(t, h.submitReq(gpuJob)) }},
		{name: "walltime required", status: 400, contains: "walltime is required",
			cfg:  func(c *Config) { c.DefaultWalltime = 0 },
			body: func(h *harness) []byte { return mustJSON(t, h.submitReq(jobSrc(""))) }},
		{name: "root not allowed", status: 403, contains: "root",
			cfg:  func(c *Config) { c.AllowRoot = false },
			body: func(h *harness) []byte { return mustJSON(t, h.submitReq(jobSrc(""))) }},
		{name: "cwd not absolute", status: 400, contains: "cwd",
			body: func(h *harness) []byte {
				r := h.submitReq(jobSrc(""))
				r.Cwd = "relative/dir"
				return mustJSON(t, r)
			}},
		{name: "empty filename", status: 400, contains: "filename",
			body: func(h *harness) []byte {
				r := h.submitReq(jobSrc(""))
				r.Filename = ""
				return mustJSON(t, r)
			}},
		{name: "malformed env", status: 400, contains: "environment",
			body: func(h *harness) []byte {
				r := h.submitReq(jobSrc(""))
				r.Env = map[string]string{"A=B": "x"}
				return mustJSON(t, r)
			}},
		{name: "oversized body", status: 413, contains: "over",
			body: func(h *harness) []byte {
				return mustJSON(t, h.submitReq(strings.Repeat("#", maxBodyBytes+1)))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			h := newHarness(t, cfg)
			status, e := h.raw("POST", api.RouteJobs, c.body(h))
			if status != c.status {
				t.Fatalf("status %d (%q), want %d", status, e.Error, c.status)
			}
			if !strings.Contains(e.Error, c.contains) {
				t.Errorf("error %q does not say %q", e.Error, c.contains)
			}
			if c.diag != "" && (len(e.Diagnostics) == 0 || !strings.Contains(e.Diagnostics[0], c.diag)) {
				t.Errorf("diagnostics %q, want a line with %q", e.Diagnostics, c.diag)
			}
			// Nothing changed: no job, and the next submit gets id 1.
			if n := h.jobCount(); n != 0 {
				t.Fatalf("%d jobs after a refused submit", n)
			}
			h.cfg.AllowRoot, h.cfg.DefaultWalltime = true, time.Hour
			h.srv.cfg = h.cfg
			if ids := h.submit(jobSrc("")); len(ids) != 1 || ids[0] != 1 {
				t.Errorf("next submit got ids %v, want [1]: a refused submit used an id", ids)
			}
		})
	}
}

func TestRouteErrors(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	done := h.submit(jobSrc(""))[0]
	h.schedule()
	h.report(done, api.StateCompleted, 0)
	running := h.submit(jobSrc(""))[0]
	h.schedule()
	if st := h.state(running); st != api.StateRunning {
		t.Fatalf("job %d is %s, want RUNNING", running, st)
	}
	cases := []struct {
		name   string
		call   func() error
		status int
	}{
		{"unknown job", func() error { _, err := h.client.Job(ctx, 999); return err }, 404},
		{"cancel finished", func() error { _, err := h.client.Cancel(ctx, done); return err }, 409},
		{"hold running", func() error { _, err := h.client.Hold(ctx, running); return err }, 409},
		{"release pending-never-held", func() error { _, err := h.client.Release(ctx, running); return err }, 409},
		{"drain unknown node", func() error {
			_, err := h.client.Drain(ctx, "nope", api.DrainRequest{Reason: "x"})
			return err
		}, 404},
		{"drain without reason", func() error { _, err := h.client.Drain(ctx, "n1", api.DrainRequest{}); return err }, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := apiStatus(c.call()); got != c.status {
				t.Errorf("status %d, want %d", got, c.status)
			}
		})
	}
	raws := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/jobs/abc", 400},
		{"GET", "/v1/jobs/-1", 400},
		{"POST", "/v1/jobs/abc/cancel", 400},
		{"GET", "/v1/jobs/0", 404},
		{"GET", "/v1/nope", 404},
		{"DELETE", "/v1/jobs", 405},
		{"GET", fmt.Sprintf("/v1/jobs/%d/wait?timeout=forever", done), 400},
		{"GET", fmt.Sprintf("/v1/jobs/%d/wait?timeout=10m", done), 400},
	}
	for _, c := range raws {
		if got, e := h.raw(c.method, c.path, nil); got != c.status || e.Error == "" {
			t.Errorf("%s %s: status %d error %q, want %d with a message", c.method, c.path, got, e.Error, c.status)
		}
	}
	if h.state(done) != api.StateCompleted || h.state(running) != api.StateRunning {
		t.Errorf("refused requests changed states: %s, %s", h.state(done), h.state(running))
	}
}

// A connection without peer credentials (TCP) is refused on every route.
func TestUnauthenticatedConnection(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h.srv.Handler(), ConnContext: ConnContext}
	go hs.Serve(ln)
	defer hs.Close()
	routes := []struct{ method, path string }{
		{"GET", api.RouteHealth}, {"GET", api.RouteJobs}, {"POST", api.RouteJobs},
		{"GET", fmt.Sprintf("/v1/jobs/%d", id)}, {"GET", fmt.Sprintf("/v1/jobs/%d/wait", id)},
		{"POST", fmt.Sprintf("/v1/jobs/%d/cancel", id)}, {"POST", fmt.Sprintf("/v1/jobs/%d/hold", id)},
		{"POST", fmt.Sprintf("/v1/jobs/%d/release", id)}, {"GET", api.RouteNodes},
		{"POST", "/v1/nodes/n1/drain"}, {"POST", "/v1/nodes/n1/resume"}, {"GET", "/v1/nope"},
	}
	for _, r := range routes {
		req, _ := http.NewRequest(r.method, "http://"+ln.Addr().String()+r.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s over TCP: status %d, want 401", r.method, r.path, resp.StatusCode)
		}
	}
	if st := h.state(id); st != api.StatePending || h.jobCount() != 1 {
		t.Errorf("unauthenticated requests changed something: state %s, %d jobs", st, h.jobCount())
	}
}

const nobody = 65534

// Non-admin users see and touch only their own jobs.
func TestPermissions(t *testing.T) {
	h := newHarness(t, testConfig())
	rootJob := h.submit(jobSrc(""))[0]
	resp, err := h.srv.Submit(Caller{UID: nobody, GID: nobody}, h.submitReq(jobSrc("")))
	if err != nil {
		t.Fatalf("submit as nobody: %v", err)
	}
	own := resp.IDs[0]
	if j := h.job(own); j.UID != nobody || j.User != "nobody" {
		t.Fatalf("job of nobody stored as uid %d user %q", j.UID, j.User)
	}
	path := func(id uint64, action string) string { return fmt.Sprintf("/v1/jobs/%d%s", id, action) }
	cases := []struct {
		name         string
		uid          uint32
		method, path string
		status       int
	}{
		{"get other's job (public part)", nobody, "GET", path(rootJob, ""), 200},
		{"wait other's job", nobody, "GET", path(rootJob, "/wait?timeout=0s"), 403},
		{"cancel other's job", nobody, "POST", path(rootJob, "/cancel"), 403},
		{"hold other's job", nobody, "POST", path(rootJob, "/hold"), 403},
		{"release other's job", nobody, "POST", path(rootJob, "/release"), 403},
		{"list other user (public part)", nobody, "GET", "/v1/jobs?user=root", 200},
		{"drain as non-admin", nobody, "POST", "/v1/nodes/n1/drain", 403},
		{"resume as non-admin", nobody, "POST", "/v1/nodes/n1/resume", 403},
		{"get own job", nobody, "GET", path(own, ""), 200},
		{"list own user", nobody, "GET", "/v1/jobs?user=nobody", 200},
		{"admin gets any job", 0, "GET", path(own, ""), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(`{"reason":"maintenance"}`)
			if got, out := h.as(c.uid, c.method, c.path, body); got != c.status {
				t.Errorf("status %d (%s), want %d", got, out, c.status)
			}
		})
	}
	if h.state(rootJob) != api.StatePending {
		t.Errorf("root's job is %s after refused requests", h.state(rootJob))
	}
	lists := []struct {
		uid  uint32
		want []uint64
	}{{nobody, []uint64{rootJob, own}}, {0, []uint64{rootJob, own}}}
	for _, l := range lists {
		status, body := h.as(l.uid, "GET", "/v1/jobs", nil)
		var got []api.Job
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("list as %d: %d %s", l.uid, status, body)
		}
		var ids []uint64
		for _, j := range got {
			ids = append(ids, j.ID)
			// Everyone sees everyone's jobs, as in squeue; paths stay private.
			if private := l.uid != 0 && j.UID != int(l.uid); j.Private != private || (private && (j.Workdir != "" || j.Output != "")) {
				t.Errorf("list as uid %d: job %d private=%v workdir %q output %q", l.uid, j.ID, j.Private, j.Workdir, j.Output)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(l.want) {
			t.Errorf("list as uid %d: %v, want %v", l.uid, ids, l.want)
		}
	}
	// A user may cancel their own job.
	if status, body := h.as(nobody, "POST", path(own, "/cancel"), nil); status != 200 {
		t.Errorf("cancel own job: %d %s", status, body)
	}
	if h.state(own) != api.StateCancelled {
		t.Errorf("own job is %s after cancel", h.state(own))
	}
}
