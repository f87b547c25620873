package virtual_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/agent/virtual"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
	"github.com/hpc-sched/hpc/server"
	"github.com/hpc-sched/hpc/store"
)

// cluster is a real server (bbolt store, HTTP API on a Unix socket) and
// a fleet of virtual nodes whose agents speak the agent protocol to it in
// process: everything but TLS and the network.
type cluster struct {
	tb        testing.TB
	srv       *server.Server
	client    *api.Client
	sock, cwd string
	// ended counts the outcomes the server has taken from the agents.
	ended atomic.Int64
	log   *slog.Logger
}

// countingTransport counts the outcomes each successful sync delivered.
type countingTransport struct {
	agent.Transport
	ended *atomic.Int64
}

func (t *countingTransport) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error) {
	resp, err := t.Transport.Sync(ctx, req)
	if err == nil {
		t.ended.Add(int64(len(req.Outcomes)))
	}
	return resp, err
}

func startCluster(tb testing.TB, file string, n int, log *slog.Logger) *cluster {
	tb.Helper()
	// No per-user limits: the benchmarks queue 100,000 jobs as one user.
	return startClusterWith(tb, server.Config{AllowRoot: true, DefaultWalltime: time.Hour,
		Limits: server.Limits{MaxQueuedPerUser: -1, MaxRunningPerUser: -1}}, file, n, log)
}

// startClusterWith is startCluster with the server's configuration.
func startClusterWith(tb testing.TB, cfg server.Config, file string, n int, log *slog.Logger) *cluster {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f, err := nodeclass.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	picked, err := virtual.Spread(f, n)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "hpc.db"))
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(cfg, st, log)
	if err != nil {
		tb.Fatal(err)
	}
	c := &cluster{tb: tb, srv: srv, cwd: dir, log: log}
	ctx, cancel := context.WithCancel(context.Background())
	fleet, err := virtual.NewFleet(ctx, picked, nil, func(_ context.Context, name string) (agent.Transport, error) {
		return &countingTransport{Transport: srv.InProcess(name), ended: &c.ended}, nil
	}, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := fleet.Register(ctx); err != nil {
		tb.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "v")
	if err != nil {
		tb.Fatal(err)
	}
	c.sock = filepath.Join(sockDir, "s")
	ln, err := net.Listen("unix", c.sock)
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ConnContext: server.ConnContext}
	go hs.Serve(ln)
	done := make(chan struct{}, 2)
	go func() { srv.Run(ctx); done <- struct{}{} }()
	go func() { fleet.Run(ctx); done <- struct{}{} }()
	tb.Cleanup(func() {
		cancel()
		<-done
		<-done
		hs.Close()
		st.Close()
		os.RemoveAll(sockDir)
	})
	if c.client, err = api.NewClient("unix://" + c.sock); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c *cluster) submit(src string) []uint64 {
	c.tb.Helper()
	resp, err := c.client.Submit(context.Background(), api.SubmitRequest{Filename: filepath.Join(c.cwd, "job.hcl"), Source: src, Cwd: c.cwd})
	if err != nil {
		c.tb.Fatalf("submit: %v", err)
	}
	return resp.IDs
}

func (c *cluster) wait(id uint64) api.Job {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.client.Wait(ctx, id)
	if err != nil {
		c.tb.Fatalf("wait for job %d: %v", id, err)
	}
	return j
}

// virtualJob is a job file whose virtual run lasts runtime seconds.
func virtualJob(name, runtime, extra string) string {
	return fmt.Sprintf(`job %q {
  walltime = "1m"
%s
  task {
    command = "/bin/true"
    env     = { HPC_VIRTUAL_RUNTIME = %q }
  }
}
`, name, extra, runtime)
}

// rawGet reads path from the server as bytes.
func (c *cluster) rawGet(path string) ([]byte, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", c.sock)
	}}}
	resp, err := hc.Get("http://hpcd" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
