package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// unixServer serves h over HTTP on a Unix socket in a temp dir and returns
// the unix:// address.
func unixServer(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return "unix://" + sock
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewClientAddresses(t *testing.T) {
	tests := []struct {
		addr    string
		base    string
		wantErr string
	}{
		{addr: "unix:///run/hpc/hpcd.sock", base: "http://hpcd"},
		{addr: "/run/hpc/hpcd.sock", base: "http://hpcd"},
		{addr: "http://127.0.0.1:8080", base: "http://127.0.0.1:8080"},
		{addr: "http://localhost:8080", base: "http://localhost:8080"},
		{addr: "http://head:8080", wantErr: "plain http only to a loopback"},
		{addr: "https://head:8443/", base: "https://head:8443"},
		{addr: "unix://relative.sock", wantErr: "must be absolute"},
		{addr: "unix://", wantErr: "must be absolute"},
		{addr: "ftp://head:21", wantErr: "unknown scheme"},
		{addr: "http://", wantErr: "no host"},
		{addr: "https://head:80/v1", wantErr: "no path"},
		{addr: "head:8080", wantErr: "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := NewClient(tt.addr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient(%q) error = %v, want containing %q", tt.addr, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient(%q): %v", tt.addr, err)
			}
			if c.base != tt.base || c.Addr() != tt.addr {
				t.Errorf("base, addr = %q, %q; want %q, %q", c.base, c.Addr(), tt.base, tt.addr)
			}
		})
	}
}

func TestResolveAddr(t *testing.T) {
	t.Setenv(EnvAddr, "")
	if got, want := ResolveAddr(""), "unix://"+ClientSocketPath(); got != want {
		t.Errorf("default = %q, want %q", got, want)
	}
	t.Setenv(EnvAddr, "http://env:1")
	if got := ResolveAddr(""); got != "http://env:1" {
		t.Errorf("env = %q", got)
	}
	if got := ResolveAddr("unix:///flag.sock"); got != "unix:///flag.sock" {
		t.Errorf("flag = %q", got)
	}
}

func TestClientRequests(t *testing.T) {
	code := 3
	type call struct{ method, path, query, body string }
	var got call
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		b := make([]byte, 1<<16)
		n, _ := r.Body.Read(b)
		got = call{r.Method, r.URL.Path, r.URL.RawQuery, strings.TrimSpace(string(b[:n]))}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch {
		case r.URL.Path == "/v1/jobs" && r.Method == http.MethodPost:
			writeJSON(w, 201, SubmitResponse{IDs: []uint64{7, 8}})
		case r.URL.Path == "/v1/jobs":
			writeJSON(w, 200, []Job{{ID: 1, State: StateRunning}})
		case strings.HasPrefix(r.URL.Path, "/v1/nodes/") && strings.HasSuffix(r.URL.Path, "/resume"):
			w.WriteHeader(http.StatusNoContent) // a bodiless answer must decode as zero
		case strings.HasPrefix(r.URL.Path, "/v1/nodes/"):
			writeJSON(w, 200, Node{Name: "gpu 1", State: "DRAINING"})
		case r.URL.Path == "/v1/nodes":
			writeJSON(w, 200, []Node{{Name: "n1", State: "IDLE"}})
		case r.URL.Path == "/v1/health":
			writeJSON(w, 200, map[string]string{"status": "ok"})
		default:
			writeJSON(w, 200, Job{ID: 42, State: StateFailed, ExitCode: &code})
		}
	})
	c, err := NewClient(unixServer(t, mux))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	job42 := Job{ID: 42, State: StateFailed, ExitCode: &code}

	tests := []struct {
		name string
		do   func() (any, error)
		want any
		call call
	}{
		{"submit", func() (any, error) {
			return c.Submit(ctx, SubmitRequest{Filename: "/a.hcl", Source: "x", Cwd: "/"})
		}, SubmitResponse{IDs: []uint64{7, 8}},
			call{"POST", "/v1/jobs", "", `{"filename":"/a.hcl","source":"x","cwd":"/"}`}},
		{"jobs filtered", func() (any, error) { return c.Jobs(ctx, "alice", "RUNNING") },
			[]Job{{ID: 1, State: StateRunning}}, call{"GET", "/v1/jobs", "state=RUNNING&user=alice", ""}},
		{"jobs all", func() (any, error) { return c.Jobs(ctx, "", "") },
			[]Job{{ID: 1, State: StateRunning}}, call{"GET", "/v1/jobs", "", ""}},
		{"job", func() (any, error) { return c.Job(ctx, 42) }, job42, call{"GET", "/v1/jobs/42", "", ""}},
		{"wait", func() (any, error) { return c.Wait(ctx, 42) }, job42, call{"GET", "/v1/jobs/42/wait", "timeout=30s", ""}},
		{"cancel", func() (any, error) { return c.Cancel(ctx, 42) }, job42, call{"POST", "/v1/jobs/42/cancel", "", ""}},
		{"hold", func() (any, error) { return c.Hold(ctx, 42) }, job42, call{"POST", "/v1/jobs/42/hold", "", ""}},
		{"release", func() (any, error) { return c.Release(ctx, 42) }, job42, call{"POST", "/v1/jobs/42/release", "", ""}},
		{"nodes", func() (any, error) { return c.Nodes(ctx) }, []Node{{Name: "n1", State: "IDLE"}}, call{"GET", "/v1/nodes", "", ""}},
		{"drain", func() (any, error) {
			return c.Drain(ctx, "gpu 1", DrainRequest{Reason: "swap HBM", Requeue: true})
		}, Node{Name: "gpu 1", State: "DRAINING"},
			call{"POST", "/v1/nodes/gpu 1/drain", "", `{"reason":"swap HBM","requeue":true}`}},
		{"resume", func() (any, error) { return c.Resume(ctx, "n1") }, Node{}, call{"POST", "/v1/nodes/n1/resume", "", ""}},
		{"health", func() (any, error) { return nil, c.Health(ctx) }, nil, call{"GET", "/v1/health", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = call{}
			v, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Errorf("result = %+v, want %+v", v, tt.want)
			}
			if got != tt.call {
				t.Errorf("request = %+v, want %+v", got, tt.call)
			}
		})
	}
}

func TestWaitLoopsUntilTerminal(t *testing.T) {
	var n atomic.Int32
	addr := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := StateRunning
		if n.Add(1) >= 3 {
			state = StateTimeout
		}
		writeJSON(w, 200, Job{ID: 5, State: state, Reason: "walltime 1s exceeded"})
	}))
	c, err := NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Wait(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != StateTimeout || n.Load() != 3 {
		t.Errorf("Wait = %s after %d polls, want TIMEOUT after 3", j.State, n.Load())
	}
}

func TestWaitStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the job still runs
		writeJSON(w, 200, Job{ID: 5, State: StateRunning})
	}))
	c, _ := NewClient(addr)
	if _, err := c.Wait(ctx, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait error = %v, want context.Canceled", err)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    APIError
		wantMsg string
	}{
		{"api error", 400, `{"error":"job.hcl: invalid","diagnostics":["job.hcl:3:5: bad walltime"]}`,
			APIError{Status: 400, Message: "job.hcl: invalid", Diagnostics: []string{"job.hcl:3:5: bad walltime"}}, ""},
		{"not found", 404, `{"error":"no job 9"}`, APIError{Status: 404, Message: "no job 9"}, ""},
		{"plain text", 502, "bad gateway\nmore", APIError{Status: 502, Message: "server answered 502: bad gateway"}, ""},
		{"empty", 500, "", APIError{Status: 500, Message: "server answered 500: Internal Server Error"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			c, _ := NewClient(addr)
			_, err := c.Job(context.Background(), 9)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %T %v, want *APIError", err, err)
			}
			if !reflect.DeepEqual(*ae, tt.want) {
				t.Errorf("error = %+v, want %+v", *ae, tt.want)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	dir := t.TempDir()
	// A socket file nobody listens on gives ECONNREFUSED; a missing one ENOENT.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedTCP := "http://" + tcp.Addr().String()
	tcp.Close()

	for _, addr := range []string{"unix://" + filepath.Join(dir, "missing.sock"), "unix://" + stale, closedTCP} {
		t.Run(addr, func(t *testing.T) {
			c, err := NewClient(addr)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Nodes(context.Background())
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %T %v, want *UnavailableError", err, err)
			}
			want := "no hpcd is running at " + addr + ": start one with `hpcd dev`, or set HPC_ADDR / --addr"
			if err.Error() != want {
				t.Errorf("message = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestUnavailableOtherCause(t *testing.T) {
	e := &UnavailableError{Addr: "unix:///x.sock", Err: &net.OpError{Op: "dial", Net: "unix",
		Err: os.NewSyscallError("connect", os.ErrPermission)}}
	want := "cannot reach hpcd at unix:///x.sock (permission denied): start one with `hpcd dev`, or set HPC_ADDR / --addr"
	if e.Error() != want {
		t.Errorf("message = %q, want %q", e.Error(), want)
	}
}

func TestCheckSocketPathRefusesOthersPlaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by another user")
	}
	base := t.TempDir()
	mine := filepath.Join(base, "mine")
	theirs := filepath.Join(base, "theirs")
	open := filepath.Join(base, "open")
	for _, d := range []string{mine, theirs, open} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(mine, "planted.sock")
	if err := os.WriteFile(planted, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		wantErr string
	}{
		{filepath.Join(mine, "hpcd.sock"), ""},
		{filepath.Join(theirs, "hpcd.sock"), "belongs to uid 65534"},
		{filepath.Join(open, "hpcd.sock"), "writable by every user"},
		{planted, "belongs to uid 65534"},
	}
	for _, tt := range tests {
		err := CheckSocketPath(tt.path)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckSocketPath(%s) = %v, want %q", tt.path, err, tt.wantErr)
		}
	}
}
