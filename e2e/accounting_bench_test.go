package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// benchN reads a size from the environment (to run the full-size aim),
// else def (to keep a casual -bench run short).
func benchN(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTicks is the machine's busy CPU time so far (all CPUs, /proc/stat),
// and the CPU time of process pid (user+system), both in seconds.
func cpuTicks(t testing.TB, pid int) (machine, proc float64) {
	const hz = 100 // USER_HZ
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 { // idle and iowait are not busy
			machine += n / hz
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	pf := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(pf[11], 64)
	st, _ := strconv.ParseFloat(pf[12], 64)
	return machine, (ut + st) / hz
}

// treeCPU is the CPU time, in seconds, of process pid and of the children
// it has reaped (utime, stime, cutime, cstime of /proc/PID/stat); 0 when
// pid is gone. A job's CPU lands in its reaper's children's time: hpcd's
// (through its shims) or the spawner's.
func treeCPU(pid int) (self, children float64) {
	const hz = 100
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	pf := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var v [4]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(pf[11+i], 64)
	}
	return (v[0] + v[1]) / hz, (v[2] + v[3]) / hz
}

// spawnerPID is the pid of the node's spawner (0 when none runs).
func spawnerPID(dataDir string) int {
	var id struct {
		PID int `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "exec", "spawner", "pid"))
	if err != nil || json.Unmarshal(b, &id) != nil {
		return 0
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", id.PID)); err != nil {
		return 0
	}
	return id.PID
}

// waitEnded waits until n jobs ended since t0, asking the server for a
// count (usage sums, cheap) every 250 ms, then checks once, untimed by
// the caller, that every one of them completed.
func waitEnded(b *testing.B, cl *api.Client, t0 time.Time, n int, limit time.Duration) {
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		rep, err := cl.Usage(ctx, "account", t0, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		ended := 0
		for _, r := range rep.Rows {
			ended += r.Jobs
		}
		if ended >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d jobs ended within %v", ended, n, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkCompleted fails unless every job that ended since t0 completed.
func checkCompleted(b *testing.B, cl *api.Client, t0 time.Time) {
	q := api.HistoryQuery{Since: t0, Brief: true, Limit: 10000}
	for {
		h, err := cl.History(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := api.ParseHistoryTSV(h.TSV)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			if r.State != api.StateCompleted {
				b.Fatalf("job %d ended %s", r.ID, r.State)
			}
		}
		if q.After = h.Next; q.After == "" {
			return
		}
	}
}

// BenchmarkArrayDrain submits one array of trivial tasks (one request,
// one commit) and measures until every task has completed: jobs/s, and
// the CPU each job cost the machine (all processes: server, shims, jobs,
// kernel) and the server alone. HPC_BENCH_ARRAY sets the size (the aim
// is stated for 10,000).
func BenchmarkArrayDrain(b *testing.B) {
	n := benchN("HPC_BENCH_ARRAY", 1000)
	var extra []string
	if p := os.Getenv("HPC_BENCH_CPUPROFILE"); p != "" {
		extra = append(extra, "--cpuprofile", p)
	}
	c := startCluster(b, extra...)
	cl := c.client()
	req := c.submitRequest(fmt.Sprintf(`job "trivial" {
  walltime = "1m"
  array { count = %d }
  task { command = "/bin/true" }
}`, n))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now().Add(-time.Second)
		m0, p0 := cpuTicks(b, c.cmd.Process.Pid)
		_, hc0 := treeCPU(c.cmd.Process.Pid)
		sp := spawnerPID(c.dataDir)
		ss0, sc0 := treeCPU(sp)
		start := time.Now()
		resp, err := cl.Submit(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		submitted := time.Since(start)
		if len(resp.IDs) != n {
			b.Fatalf("%d ids for an array of %d", len(resp.IDs), n)
		}
		waitEnded(b, cl, t0, n, 30*time.Minute)
		el := time.Since(start)
		m1, p1 := cpuTicks(b, c.cmd.Process.Pid)
		_, hc1 := treeCPU(c.cmd.Process.Pid)
		if sp == 0 {
			sp = spawnerPID(c.dataDir) // started by the first launch
		}
		ss1, sc1 := treeCPU(sp)
		b.StopTimer()
		checkCompleted(b, cl, t0)
		b.StartTimer()
		b.ReportMetric(float64(n)/el.Seconds(), "jobs/s")
		b.ReportMetric(float64(submitted.Microseconds())/1000, "submit-ms")
		b.ReportMetric((m1-m0)*1000/float64(n), "machine-cpu-ms/job")
		b.ReportMetric((p1-p0)*1000/float64(n), "hpcd-cpu-ms/job")
		// The launch path apart from the machine's other load: hpcd and
		// what it reaped (shims, their jobs), the spawner and its jobs.
		b.ReportMetric((hc1-hc0)*1000/float64(n), "hpcd-children-cpu-ms/job")
		b.ReportMetric((ss1-ss0)*1000/float64(n), "spawner-cpu-ms/job")
		b.ReportMetric((sc1-sc0)*1000/float64(n), "spawner-jobs-cpu-ms/job")
		b.ReportMetric((p1-p0+hc1-hc0+ss1-ss0+sc1-sc0)*1000/float64(n), "tree-cpu-ms/job")
	}
}

// BenchmarkSerialSubmit runs `hpcsub submit` 500 times one after another
// (a shell loop) and measures until all 500 jobs have completed.
func BenchmarkSerialSubmit(b *testing.B) {
	n := benchN("HPC_BENCH_SERIAL", 500)
	c := startCluster(b)
	file := c.writeJob("trivial.hcl", `job "trivial" {
  walltime = "1m"
  task { command = "/bin/true" }
}`)
	cl := c.client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now().Add(-time.Second)
		start := time.Now()
		for k := 0; k < n; k++ {
			cmd := exec.Command(filepath.Join(binDir, "hpcsub"), "submit", file)
			cmd.Dir = c.work
			cmd.Env = append(os.Environ(), api.EnvAddr+"=unix://"+c.sock)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("hpcsub submit: %v: %s", err, out)
			}
		}
		submitted := time.Since(start)
		waitEnded(b, cl, t0, n, 10*time.Minute)
		el := time.Since(start)
		b.StopTimer()
		checkCompleted(b, cl, t0)
		b.StartTimer()
		b.ReportMetric(el.Seconds(), "s-all-done")
		b.ReportMetric(float64(n)/submitted.Seconds(), "submits/s")
	}
}

// BenchmarkConcurrentSubmits has 8 API clients submit as fast as they
// can into a drained node's queue (nothing runs): durable submits/s, each
// acknowledged only after its commit. Concurrent submits share commits.
func BenchmarkConcurrentSubmits(b *testing.B) {
	c := startCluster(b)
	node := c.nodes()[0].Name
	if _, errOut, code := c.hpcsub("node", "drain", node, "--reason", "benchmark: keep jobs pending"); code != 0 {
		b.Fatalf("drain: %s", errOut)
	}
	cl := c.client()
	req := c.submitRequest(`job "trivial" {
  walltime = "1m"
  task { command = "/bin/true" }
}`)
	ctx := context.Background()
	const per = 500
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var failed atomic.Bool
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < per; k++ {
					if _, err := cl.Submit(ctx, req); err != nil {
						failed.Store(true)
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		if failed.Load() {
			b.FailNow()
		}
		b.ReportMetric(8*per/el.Seconds(), "submits/s")
	}
}

// seedArchive writes n ended jobs straight into the archive of the store
// at dbPath, spread evenly over the given days before now, as the server
// would have archived them.
func seedArchive(t testing.TB, dbPath string, n int, days int) {
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	span := time.Duration(days) * 24 * time.Hour
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	accounts := []string{"physics", "bio", "chem", "ml"}
	const batch = 50000
	base := uint64(1_000_000_000) // clear of the ids the server hands out
	for from := 0; from < n; from += batch {
		recs := make([]store.ArchiveRecord, 0, batch)
		for i := from; i < min(n, from+batch); i++ {
			end := now.Add(-span + time.Duration(i)*(span/time.Duration(n)))
			start := end.Add(-90 * time.Second)
			code := 0
			j := api.Job{ID: base + uint64(i), Name: "sim", User: users[i%len(users)], UID: 1000 + i%len(users),
				Account: accounts[i%len(accounts)], Priority: 100, State: api.StateCompleted, ExitCode: &code,
				NodesWanted: 1, CPUs: 1, Memory: 1 << 30, Walltime: "1h0m0s", WalltimeSec: 3600,
				Nodes: []string{"n1"}, GPUs: map[string][]int{"n1": nil}, CPUIDs: map[string][]int{"n1": {i % 64}},
				Workdir: "/home/alice", Output: "/home/alice/hpc-1.out", Error: "/home/alice/hpc-1.err",
				SubmitTime: start.Add(-time.Second), StartTime: &start, EndTime: &end,
				Usage: &api.Usage{ElapsedSeconds: 90, CPUSeconds: 80, PeakMemory: 100 << 20},
				History: []api.Transition{{Time: start.Add(-time.Second), State: api.StatePending, Reason: "submitted"},
					{Time: start, State: api.StateRunning}, {Time: end, State: api.StateCompleted, Reason: "exit code 0"}},
				Runs: []api.Run{{Nodes: []string{"n1"}, CPUs: 1, Memory: 1 << 30, Start: start, End: end, State: api.StateCompleted,
					Cause: "exit code 0", ExitCode: &code, Usage: api.Usage{ElapsedSeconds: 90, CPUSeconds: 80, PeakMemory: 100 << 20}}},
			}
			data, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, store.ArchiveRecord{ID: j.ID, End: end, User: j.User, Account: j.Account,
				Summary: []byte("COMPLETED\tsim\t0\t\t1\t90\t80\t104857600\t0\t90"), Data: data})
		}
		if err := st.Archive(recs, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkHistoryArchive1M answers `hpcsub history` (the binary, all
// pages) for one day out of 1,000,000 archived jobs spread over 100 days
// (10,000 a day), and the same for one user. HPC_BENCH_ARCHIVE sets the
// archive's size. Seeding the archive takes a minute or two; it is not
// timed.
func BenchmarkHistoryArchive1M(b *testing.B) {
	n := benchN("HPC_BENCH_ARCHIVE", 1_000_000)
	c := startCluster(b)
	c.stop()
	seedArchive(b, filepath.Join(c.dataDir, "hpc.db"), n, 100)
	c.start()
	for _, args := range [][]string{
		{"history", "--since", "1d"},
		{"history", "--since", "1d", "--user", "alice"},
		{"history", "--since", "1d", "--limit", "100"},
	} {
		b.Run(strings.Join(args[1:], " "), func(b *testing.B) {
			lines := 0
			for i := 0; i < b.N; i++ {
				out, errOut, code := c.hpcsub(args...)
				if code != 0 {
					b.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				lines = strings.Count(out, "\n") - 1
			}
			b.ReportMetric(float64(lines), "jobs")
		})
	}
}

// BenchmarkArchivedRSS reads hpcd's resident memory with 100,000 archived
// jobs (a restart over them) and 10,000 pending ones behind a job that
// holds every CPU.
func BenchmarkArchivedRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := startCluster(b)
		c.stop()
		seedArchive(b, filepath.Join(c.dataDir, "hpc.db"), 100_000, 30)
		c.start()
		cl := c.client()
		ctx := context.Background()
		node := c.nodes()[0].Name
		if _, errOut, code := c.hpcsub("node", "drain", node, "--reason", "benchmark: keep jobs pending"); code != 0 {
			b.Fatalf("drain: %s", errOut)
		}
		req := c.submitRequest(`job "waiting" {
  walltime = "1m"
  task { command = "true" }
}`)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 10000/8; k++ {
					if _, err := cl.Submit(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		// A history query over the archive, then a few scheduling passes.
		if _, errOut, code := c.hpcsub("history", "--since", "30d", "--limit", "1000"); code != 0 {
			b.Fatalf("history: %s", errOut)
		}
		time.Sleep(3 * time.Second)
		st := procStatus(b, c.cmd.Process.Pid)
		b.ReportMetric(float64(st["VmRSS"])/(1<<20), "rss-MiB")
		b.ReportMetric(float64(st["RssAnon"])/(1<<20), "anon-MiB")
		b.ReportMetric(float64(st["RssFile"])/(1<<20), "file-MiB")
		b.ReportMetric(float64(mappedRSS(b, c.cmd.Process.Pid, "hpc.db"))/(1<<20), "store-map-MiB")
		c.stop()
	}
}
