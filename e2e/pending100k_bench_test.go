package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// BenchmarkPendingRSS100k is the memory half of scripts/bench-virtual.sh
// without its shell and hpcsub processes: `hpcd server` and `hpcd agent
// --virtual 1000 --node-class docs/examples/cluster.hcl` as processes,
// every node filled by one long job, then 100,000 jobs (70 % 32-CPU, 25 %
// one GPU, 5 % eight NVLink GPUs, in arrays of 1,000 as the script queues
// them) submitted through the API. It reports the server's RSS once a few
// scheduling passes have walked the full queue, `hpcsub queue`'s wall
// time (median of 3), and the RSS again after a full `--json` list of
// the pending jobs (where the script reads it).
//
//	HPC_BENCH_JOBS=N           jobs to queue (default 100000)
//	HPC_BENCH_HEAPPROFILE=FILE the server's heap profile (after a GC) once the queue is full
func BenchmarkPendingRSS100k(b *testing.B) {
	n := envInt(b, "HPC_BENCH_JOBS", 100_000)
	for i := 0; i < b.N; i++ {
		c := newCluster(b)
		addr := fmt.Sprintf("https://127.0.0.1:%d", freePort(b))
		data := filepath.Join(filepath.Dir(c.dataDir), "server")
		srv := startDaemon(b, "server", "--data-dir", data, "--listen", "unix://"+c.sock, "--listen", addr,
			"--log-level", "warn", "--max-queued-per-user", "-1", "--max-running-per-user", "-1", "--pprof")
		join := filepath.Join(data, "agent-join")
		waitUntil(b, 30*time.Second, "the agent-join file", func() bool { _, err := os.Stat(join); return err == nil })
		startDaemon(b, "agent", "--join", join, "--data-dir", filepath.Join(filepath.Dir(c.dataDir), "agent"),
			"--virtual", "1000", "--node-class", "../docs/examples/cluster.hcl", "--log-level", "warn")
		cl := c.client()
		ctx := context.Background()
		waitUntil(b, 3*time.Minute, "1,000 nodes up", func() bool {
			nodes, err := cl.Nodes(ctx)
			return err == nil && len(nodes) == 1000
		})
		submit := func(name string, runtime int, extra string) {
			src := fmt.Sprintf("job %q {\n  walltime = \"2h\"\n%s\n  task {\n    command = \"/bin/true\"\n    env     = { HPC_VIRTUAL_RUNTIME = \"%d\" }\n  }\n}\n", name, extra, runtime)
			if _, err := cl.Submit(ctx, c.submitRequest(src)); err != nil {
				b.Fatalf("submit %s: %v", name, err)
			}
		}
		submit("fill-a100", 3600, "  features = [\"a100\"]\n  resources { cpus = 256 }\n  array { count = 100 }")
		submit("fill-l4", 3600, "  features = [\"l4\"]\n  resources { cpus = 64 }\n  array { count = 300 }")
		submit("fill-cpu", 3600, "  features = [\"cpu\"]\n  resources { cpus = 128 }\n  array { count = 600 }")
		waitUntil(b, 3*time.Minute, "1,000 long jobs running", func() bool {
			running, err := cl.JobsBrief(ctx, "", string(api.StateRunning))
			return err == nil && len(running) == 1000
		})
		t0 := time.Now()
		for k := 0; k < n/1000; k++ {
			submit("cpu32", 1, "  resources {\n    cpus   = 32\n    memory = \"64GiB\"\n  }\n  array { count = 700 }")
			submit("gpu1", 1, "  resources {\n    cpus = 4\n    gpu { count = 1 }\n  }\n  array { count = 250 }")
			submit("nvl8", 1, "  resources {\n    cpus = 16\n    gpu {\n      count = 8\n      link  = \"nvlink\"\n    }\n  }\n  array { count = 50 }")
		}
		b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "submits/s")
		time.Sleep(5 * time.Second) // a few scheduling passes over the whole queue
		pid := srv.Process.Pid
		st := procStatus(b, pid)
		b.ReportMetric(float64(st["VmRSS"])/(1<<20), "rss-MiB")
		b.ReportMetric(float64(st["RssAnon"])/(1<<20), "anon-MiB")
		if f := os.Getenv("HPC_BENCH_HEAPPROFILE"); f != "" {
			saveProfile(b, c.sock, "/debug/pprof/heap?gc=1", f)
		}
		// The Go heap after a collection: what the jobs and connections
		// hold, without the garbage the collector lets grow up to GOGC.
		ms := memStats(b, c.sock)
		b.ReportMetric(float64(ms["HeapAlloc"])/(1<<20), "live-MiB")
		b.ReportMetric(float64(ms["GCCPUFraction"])/1e4, "gc-cpu-%")
		b.Logf("server heap after a GC (MiB): alloc %d, in use %d, idle %d, released %d, next GC %d, sys %d, stacks %d",
			ms["HeapAlloc"]>>20, ms["HeapInuse"]>>20, ms["HeapIdle"]>>20, ms["HeapReleased"]>>20, ms["NextGC"]>>20, ms["Sys"]>>20, ms["StackSys"]>>20)
		// hpcsub queue: wall time, and the CPU time of hpcsub and of the
		// server while it answered (what the wall time is on a machine
		// that has nothing else to do).
		var walls, cpus []time.Duration
		for k := 0; k < 3; k++ {
			_, srvBefore := cpuTicks(b, pid)
			q := exec.Command(filepath.Join(binDir, "hpcsub"), "queue")
			q.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
			t := time.Now()
			if out, err := q.CombinedOutput(); err != nil {
				b.Fatalf("hpcsub queue: %v: %.300s", err, out)
			}
			walls = append(walls, time.Since(t))
			_, srvAfter := cpuTicks(b, pid)
			cpus = append(cpus, q.ProcessState.UserTime()+q.ProcessState.SystemTime()+time.Duration((srvAfter-srvBefore)*float64(time.Second)))
		}
		slices.Sort(walls)
		slices.Sort(cpus)
		b.ReportMetric(walls[1].Seconds(), "queue-s")
		b.ReportMetric(cpus[1].Seconds(), "queue-cpu-s")
		pending, err := cl.Jobs(ctx, "", string(api.StatePending))
		if err != nil || len(pending) != n {
			b.Fatalf("full list: %d pending, %v", len(pending), err)
		}
		st = procStatus(b, pid)
		b.ReportMetric(float64(st["VmRSS"])/(1<<20), "rss-after-list-MiB")
		b.ReportMetric(float64(st["VmHWM"])/(1<<20), "peak-MiB")
	}
}

// startDaemon runs hpcd with args until the benchmark ends (SIGTERM).
func startDaemon(b testing.TB, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hpcd"), args...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			b.Logf("hpcd %s log:\n%s", args[0], log.String())
		}
	})
	return cmd
}

func waitUntil(b testing.TB, limit time.Duration, what string, ok func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			b.Fatalf("no %s within %s", what, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func envInt(b testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("%s=%q: give a number of at least 1000", name, v)
	}
	return n
}

// memStats reads the runtime.MemStats figures of the server's heap
// profile text (debug=1) after a collection (gc=1).
func memStats(b testing.TB, sock string) map[string]int64 {
	b.Helper()
	f := filepath.Join(b.TempDir(), "heap.txt")
	saveProfile(b, sock, "/debug/pprof/heap?gc=1&debug=1", f)
	data, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[k] = n
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = int64(f * 1e6) // fractions, in millionths
			}
		}
	}
	return out
}

// saveProfile fetches one of the server's profiles (hpcd --pprof) over
// its Unix socket into file.
func saveProfile(b testing.TB, sock, path, file string) {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://hpcd" + path)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("GET %s: %s: %s", path, resp.Status, msg)
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
}

// mappedRSS sums the resident kB of pid's mappings of files whose path
// ends with suffix (/proc/PID/smaps), in bytes: e.g. the store's memory
// map ("hpc.db") or the daemon's own binary ("/hpcd").
func mappedRSS(b testing.TB, pid int, suffix string) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && strings.HasSuffix(f[5], suffix)
		case in && len(f) == 3 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			sum += kb << 10
		}
	}
	return sum
}
