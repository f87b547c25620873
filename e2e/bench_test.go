package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

func (c *cluster) client() *api.Client {
	c.t.Helper()
	cl, err := api.NewClient("unix://" + c.sock)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *cluster) submitRequest(src string) api.SubmitRequest {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return api.SubmitRequest{Filename: filepath.Join(c.work, "bench.hcl"), Source: src, Env: env, Cwd: c.work}
}

// BenchmarkSubmitToRunning measures, on an idle one-machine cluster, the
// time from just before a submit call to the job's stored RUNNING
// transition (both on this machine's clock), over 200 submits per round.
func BenchmarkSubmitToRunning(b *testing.B) {
	c := startCluster(b)
	cl := c.client()
	req := c.submitRequest(`job "lat" {
  walltime = "1m"
  task { command = "true" }
}`)
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 200; k++ {
			t0 := time.Now()
			resp, err := cl.Submit(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			j, err := cl.Wait(ctx, resp.IDs[0])
			if err != nil {
				b.Fatal(err)
			}
			if j.State != api.StateCompleted {
				b.Fatalf("job %d ended %s: %s", j.ID, j.State, j.Reason)
			}
			for _, tr := range j.History {
				if tr.State == api.StateRunning {
					lat = append(lat, tr.Time.Sub(t0))
				}
			}
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkThroughput1000 submits 1,000 trivial jobs with one hpcsub
// process each (8 at a time, as a shell loop with xargs -P would) and
// measures until every job is done.
func BenchmarkThroughput1000(b *testing.B) {
	var extra []string
	if p := os.Getenv("HPC_BENCH_CPUPROFILE"); p != "" {
		extra = append(extra, "--cpuprofile", p) // where hpcd's CPU time goes
	}
	c := startCluster(b, extra...)
	file := c.writeJob("trivial.hcl", `job "trivial" {
  walltime = "1m"
  task { command = "true" }
}`)
	cl := c.client()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		ids := make(chan uint64, 1000)
		var wg sync.WaitGroup
		work := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					cmd := exec.Command(filepath.Join(binDir, "hpcsub"), "submit", file)
					cmd.Dir = c.work
					cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
					out, err := cmd.Output()
					if err != nil {
						b.Errorf("hpcsub submit: %v", err)
						return
					}
					id, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
					if err != nil {
						b.Errorf("hpcsub printed %q", out)
						return
					}
					ids <- id
				}
			}()
		}
		for k := 0; k < 1000; k++ {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		close(ids)
		submitted := time.Since(start)
		for id := range ids {
			j, err := cl.Wait(ctx, id)
			if err != nil || j.State != api.StateCompleted {
				b.Fatalf("job %d: %v %s %s", id, err, j.State, j.Reason)
			}
		}
		el := time.Since(start)
		b.ReportMetric(1000/el.Seconds(), "jobs/s")
		b.ReportMetric(1000/submitted.Seconds(), "submits/s")
	}
}

// BenchmarkPendingRSS fills the queue with 10,000 pending jobs behind a
// job that holds every CPU and reads hpcd's resident memory.
func BenchmarkPendingRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := startCluster(b)
		cl := c.client()
		ctx := context.Background()
		nodes := c.nodes()
		blocker := c.submitRequest(fmt.Sprintf(`job "blocker" {
  walltime = "10m"
  resources { cpus = %d }
  task {
    command = "sleep"
    args    = ["600"]
  }
}`, nodes[0].CPUs))
		resp, err := cl.Submit(ctx, blocker)
		if err != nil {
			b.Fatal(err)
		}
		c.waitState(resp.IDs[0], 30*time.Second, api.StateRunning)
		req := c.submitRequest(`job "waiting" {
  walltime = "1m"
  task { command = "true" }
}`)
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 10000/16; k++ { // 10,000: the default per-user queue limit
					if _, err := cl.Submit(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		time.Sleep(3 * time.Second) // a few scheduling passes over the full queue
		st := procStatus(b, c.cmd.Process.Pid)
		b.ReportMetric(float64(st["VmRSS"])/(1<<20), "rss-MiB")
		// Anonymous memory is the daemon's own; file-backed pages are its
		// binary's code and the store's memory map, shared with the cache.
		b.ReportMetric(float64(st["RssAnon"])/(1<<20), "anon-MiB")
		b.ReportMetric(float64(st["RssFile"])/(1<<20), "file-MiB")
		cl.Cancel(ctx, resp.IDs[0])
		c.stop()
	}
}

// procStatus reads the kB figures of /proc/PID/status, in bytes.
func procStatus(t testing.TB, pid int) map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			out[strings.TrimSuffix(f[0], ":")] = kb << 10
		}
	}
	if out["VmRSS"] == 0 {
		t.Fatal("no VmRSS in /proc status")
	}
	return out
}
