package virtual_test

import (
	"bytes"
	"context"
	"fmt"

	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/agent/virtual"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
	"github.com/hpc-sched/hpc/server"
)

// passLog is a slog handler that keeps the server's "scheduling pass"
// debug lines (pending jobs, plan time) and drops everything else.
type passLog struct {
	mu     sync.Mutex
	passes []pass
}

type pass struct {
	pending int
	plan    time.Duration
}

func (p *passLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *passLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *passLog) WithGroup(string) slog.Handler            { return p }
func (p *passLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "scheduling pass" {
		return nil
	}
	var ps pass
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pending":
			ps.pending = int(a.Value.Int64())
		case "plan":
			ps.plan = a.Value.Duration()
		}
		return true
	})
	p.mu.Lock()
	p.passes = append(p.passes, ps)
	p.mu.Unlock()
	return nil
}

// planTimes are the plan times of the passes that saw at least min pending jobs.
func (p *passLog) planTimes(min int) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	for _, ps := range p.passes {
		if ps.pending >= min {
			out = append(out, ps.plan)
		}
	}
	slices.Sort(out)
	return out
}

// benchJobs is the number of short jobs: HPC_BENCH_JOBS, default 100,000.
func benchJobs(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("HPC_BENCH_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("HPC_BENCH_JOBS=%q", v)
		}
	}
	return n
}

// BenchmarkVirtualCluster1000 is issue 7's scale benchmark, in one process:
// a real server (bbolt store, HTTP API on a Unix socket) with 1,000
// virtual nodes of docs/examples/cluster.hcl attached in process. Every
// node is first filled by a long job, then 100,000 short jobs (a mix of
// 32-CPU, 1-GPU and 8-NVLink-GPU shapes, 1 s each) are submitted one by
// one through the API by 16 clients; with all of them pending it measures
// the scheduling pass, memory and `hpcsub queue`; then the long jobs are
// cancelled and the short ones flow through. Run it with -benchtime 1x.
func BenchmarkVirtualCluster1000(b *testing.B) {
	n := benchJobs(b)
	hpcsub := buildHpcsub(b)
	for i := 0; i < b.N; i++ {
		pl := &passLog{}
		c := startCluster(b, "../../docs/examples/cluster.hcl", 1000, slog.New(pl))
		ctx := context.Background()

		// Fill every node with one long job per node.
		var blockers []uint64
		for _, bl := range []struct {
			feature string
			cpus    int
			count   int
		}{{"a100", 256, 100}, {"l4", 64, 300}, {"cpu", 128, 600}} {
			blockers = append(blockers, c.submit(virtualJob("fill-"+bl.feature, "3600",
				fmt.Sprintf("  features = [%q]\n  resources { cpus = %d }\n  array { count = %d }", bl.feature, bl.cpus, bl.count)))...)
		}
		waitCount(b, c, api.StateRunning, len(blockers), time.Minute)

		// Submit the short jobs one by one, 16 clients at a time.
		shapes := []string{
			virtualJob("cpu32", "1", "  resources {\n    cpus   = 32\n    memory = \"64GiB\"\n  }"),
			virtualJob("gpu1", "1", "  resources {\n    cpus = 4\n    gpu { count = 1 }\n  }"),
			virtualJob("nvl8", "1", "  resources {\n    cpus = 16\n    gpu {\n      count = 8\n      link  = \"nvlink\"\n    }\n  }"),
		}
		shape := func(k int) string { // 70 % CPU, 25 % one GPU, 5 % eight NVLink GPUs
			switch k % 20 {
			case 0:
				return shapes[2]
			case 1, 5, 9, 13, 17:
				return shapes[1]
			}
			return shapes[0]
		}
		// The submit rate: single-job submits, 16 clients at a time.
		single := min(n, 5000)
		t0 := time.Now()
		singleIDs := make([]uint64, single)
		parallel(b, 16, single, func(k int) error {
			resp, err := c.client.Submit(ctx, api.SubmitRequest{Filename: filepath.Join(c.cwd, "job.hcl"), Source: shape(k), Cwd: c.cwd})
			if err == nil {
				singleIDs[k] = resp.IDs[0]
			}
			return err
		})
		b.ReportMetric(float64(single)/time.Since(t0).Seconds(), "submits/s")
		// The rest of the queue as arrays of up to 1,000 tasks in the same
		// proportions (one submit, one commit each).
		for rest := n - single; rest > 0; {
			k := min(rest, 1000)
			for s, cnt := range []int{k * 70 / 100, k * 25 / 100, k - k*70/100 - k*25/100} {
				if cnt > 0 {
					c.submit(strings.Replace(shapes[s], "  task {", fmt.Sprintf("  array { count = %d }\n  task {", cnt), 1))
				}
			}
			rest -= k
		}
		waitCount(b, c, api.StatePending, n, time.Minute)

		// All pending: let a few passes see the whole queue.
		time.Sleep(4 * time.Second)
		if pt := pl.planTimes(n); len(pt) > 0 {
			b.ReportMetric(float64(pt[len(pt)/2].Microseconds())/1000, "pass-ms@pending")
		} else {
			b.Errorf("no scheduling pass saw %d pending jobs", n)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB@pending")
		b.ReportMetric(float64(rssBytes(b))/(1<<20), "process-rss-MiB@pending")

		var qt []time.Duration
		for k := 0; k < 3; k++ {
			cmd := exec.Command(hpcsub, "queue")
			cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
			var out bytes.Buffer
			cmd.Stdout = &out
			q0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("hpcsub queue: %v", err)
			}
			qt = append(qt, time.Since(q0))
			// Array tasks waiting for the same reason fold into one line.
			if lines := bytes.Count(out.Bytes(), []byte("\n")); lines < single {
				b.Fatalf("hpcsub queue printed %d lines, want over %d", lines, single)
			}
		}
		slices.Sort(qt)
		b.ReportMetric(qt[1].Seconds(), "queue-s")

		// Let the short jobs through: end the long ones.
		before := c.ended.Load()
		t1 := time.Now()
		parallel(b, 16, len(blockers), func(k int) error {
			_, err := c.client.Cancel(ctx, blockers[k])
			return err
		})
		want := before + int64(len(blockers)+n)
		deadline := time.Now().Add(10 * time.Minute)
		for c.ended.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d outcomes after 10 minutes", c.ended.Load()-before, len(blockers)+n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The count may include an outcome sent twice (a sync retried):
		// the queue being empty is what says all have ended.
		for {
			live, err := c.client.JobsBrief(ctx, "", liveStates)
			if err != nil {
				b.Fatal(err)
			}
			if len(live) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d jobs still live after 10 minutes", len(live))
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(float64(n)/time.Since(t1).Seconds(), "jobs/s")
		// The jobs completed (ended jobs move to the archive, where
		// GET /v1/jobs/ID still finds them).
		for k := 0; k < single; k += 499 {
			if j, err := c.client.Job(ctx, singleIDs[k]); err != nil || j.State != api.StateCompleted {
				b.Fatalf("job %d: %s %s (%v), want COMPLETED", singleIDs[k], j.State, j.Reason, err)
			}
		}
		b.ReportMetric(loadAvg(), "loadavg-1m") // the machine is shared: say how loaded
	}
}

// waitCount waits until want jobs are in state.
func waitCount(b *testing.B, c *cluster, state api.JobState, want int, d time.Duration) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		js, err := c.client.Jobs(context.Background(), "", string(state))
		if err != nil {
			b.Fatal(err)
		}
		if len(js) >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d jobs %s after %v, want %d", len(js), state, d, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// parallel runs f(0..n-1) on w goroutines and fails b on the first error.
func parallel(b *testing.B, w, n int, f func(k int) error) {
	b.Helper()
	work := make(chan int)
	errs := make(chan error, w)
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if err := f(k); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	for k := range n {
		work <- k
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func buildHpcsub(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "hpcsub")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/hpcsub")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build hpcsub: %v\n%s", err, msg)
	}
	return out
}

// BenchmarkQueue times `hpcsub queue` (the real binary, over the socket)
// with HPC_BENCH_JOBS pending jobs (default 100,000) and 10 virtual nodes
// kept busy by one long job each; it also reports the size of the list
// the server sends and how long the server takes to answer it.
func BenchmarkQueue(b *testing.B) {
	n := benchJobs(b)
	hpcsub := buildHpcsub(b)
	c := startCluster(b, "../../docs/examples/cluster.hcl", 10, nil)
	fill := []struct {
		feature string
		cpus    int
		count   int
	}{{"a100", 256, 1}, {"l4", 64, 3}, {"cpu", 128, 6}}
	for _, f := range fill {
		c.submit(virtualJob("fill-"+f.feature, "3600", fmt.Sprintf("  features = [%q]\n  resources { cpus = %d }\n  array { count = %d }", f.feature, f.cpus, f.count)))
	}
	waitCount(b, c, api.StateRunning, 10, time.Minute)
	for rest := n; rest > 0; rest -= 1000 {
		c.submit(virtualJob("q", "1", fmt.Sprintf("  array { count = %d }", min(rest, 1000))))
	}
	waitCount(b, c, api.StatePending, n, time.Minute)
	// The server's side alone: the raw list as hpcsub asks for it.
	q0 := time.Now()
	resp, err := c.rawGet("/v1/jobs?state=PENDING,HELD,RUNNING,CHECKPOINTING,REQUEUED")
	if err != nil {
		b.Fatal(err)
	}
	serverList := time.Since(q0)
	q0 = time.Now()
	briefResp, err := c.rawGet("/v1/jobs?view=brief&state=PENDING,HELD,RUNNING,CHECKPOINTING,REQUEUED")
	if err != nil {
		b.Fatal(err)
	}
	serverBrief := time.Since(q0)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(hpcsub, "queue")
		cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("hpcsub queue: %v", err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		// Array tasks waiting for the same reason fold into one line
		// (the server still sends, and hpcsub decodes, every job).
		if lines := bytes.Count(out.Bytes(), []byte("\n")); lines < 1+n/1000 {
			b.Fatalf("hpcsub queue printed %d lines, want at least %d", lines, 1+n/1000)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "queue-s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "hpcsub-cpu-s")
	b.ReportMetric(loadAvg(), "loadavg-1m")
	b.ReportMetric(serverList.Seconds(), "server-list-s")
	b.ReportMetric(float64(len(resp))/(1<<20), "list-MiB")
	b.ReportMetric(serverBrief.Seconds(), "server-brief-s")
	b.ReportMetric(float64(len(briefResp))/(1<<20), "brief-MiB")
}

// loadAvg is the machine's 1-minute load average (-1 when unknown).
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// liveStates are the states of jobs that have not ended.
const liveStates = "PENDING,HELD,RUNNING,CHECKPOINTING,REQUEUED"

// BenchmarkDownNodeRequeue measures how long the jobs of a node whose
// agent is gone take to be requeued, on the 1,000-node cluster plus one
// more node in a fleet of its own. 128 one-CPU requeue = true jobs run
// there; then its agent stops (as kill -9 would: no goodbye), and the
// benchmark times the server's DOWN verdict (DownTimeout 3 s here, 30 s by
// default) and, from that verdict, until none of its jobs is RUNNING.
func BenchmarkDownNodeRequeue(b *testing.B) {
	const jobs = 128
	for i := 0; i < b.N; i++ {
		c := startClusterWith(b, server.Config{AllowRoot: true, DefaultWalltime: time.Hour, DownTimeout: 3 * time.Second},
			"../../docs/examples/cluster.hcl", 1000, nil)
		classFile := filepath.Join(b.TempDir(), "victim.hcl")
		if err := os.WriteFile(classFile, []byte("class \"victim\" {\n  count    = 1\n  cpus     = 128\n  memory   = \"256GiB\"\n  features = [\"victim\"]\n}\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		f, err := nodeclass.ReadFile(classFile)
		if err != nil {
			b.Fatal(err)
		}
		vctx, stopVictim := context.WithCancel(context.Background())
		victim, err := virtual.NewFleet(vctx, f.Nodes(), nil, func(_ context.Context, name string) (agent.Transport, error) {
			return c.srv.InProcess(name), nil
		}, c.log)
		if err != nil {
			b.Fatal(err)
		}
		if err := victim.Register(vctx); err != nil {
			b.Fatal(err)
		}
		stopped := make(chan struct{})
		go func() { victim.Run(vctx); close(stopped) }()
		c.submit(virtualJob("on-victim", "3600", fmt.Sprintf("  features = [\"victim\"]\n  requeue  = true\n  array { count = %d }", jobs)))
		waitCount(b, c, api.StateRunning, jobs, time.Minute)

		t0 := time.Now()
		stopVictim()
		<-stopped
		ctx := context.Background()
		var down time.Time
		for down.IsZero() {
			nodes, err := c.client.Nodes(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range nodes {
				if n.Name == "victim-0001" && n.State == api.NodeDown {
					down = time.Now()
				}
			}
			if time.Since(t0) > time.Minute {
				b.Fatal("victim-0001 not DOWN after a minute")
			}
			time.Sleep(5 * time.Millisecond)
		}
		for {
			running, err := c.client.JobsBrief(ctx, "", string(api.StateRunning))
			if err != nil {
				b.Fatal(err)
			}
			if len(running) == 0 {
				break
			}
			if time.Since(down) > time.Minute {
				b.Fatalf("%d jobs still RUNNING a minute after the node went DOWN", len(running))
			}
			time.Sleep(5 * time.Millisecond)
		}
		requeued := time.Since(down)
		pending, err := c.client.JobsBrief(ctx, "", string(api.StatePending))
		if err != nil || len(pending) != jobs {
			b.Fatalf("%d jobs PENDING after the requeue (%v), want %d", len(pending), err, jobs)
		}
		b.ReportMetric(down.Sub(t0).Seconds(), "down-detect-s")
		b.ReportMetric(float64(requeued.Microseconds())/1000, "requeue-after-down-ms")
		b.ReportMetric(loadAvg(), "loadavg-1m")
	}
}
