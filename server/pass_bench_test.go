package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// BenchmarkSchedulePass is one scheduling pass (snapshot, plan, the
// waiting jobs' reasons) over HPC_BENCH_PENDING pending jobs (default
// 100,000) on 1,000 8-CPU nodes that a long job each keeps busy, so that
// nothing starts and every pass sees the whole queue, as in issue 7's
// 1,000-node benchmark before its long jobs end ("busy"), and once they
// have been cancelled and are being stopped ("stopping"). It reports the
// part of the pass spent building the snapshot under the server's lock.
func BenchmarkSchedulePass(b *testing.B) {
	for _, stopping := range []bool{false, true} {
		name := "busy"
		if stopping {
			name = "stopping"
		}
		b.Run(name, func(b *testing.B) { benchSchedulePass(b, stopping) })
	}
}

func benchSchedulePass(b *testing.B, stopping bool) {
	pending := 100_000
	if v := os.Getenv("HPC_BENCH_PENDING"); v != "" {
		var err error
		if pending, err = strconv.Atoi(v); err != nil || pending < 1 {
			b.Fatalf("HPC_BENCH_PENDING=%q", v)
		}
	}
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "hpc.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := testConfig()
	cfg.Limits.MaxQueuedPerUser, cfg.Limits.MaxRunningPerUser, cfg.Limits.MaxArraySize = -1, -1, 10_000
	s, err := New(cfg, st, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	const nodes = 1000
	for i := range nodes {
		if err := s.AttachAgent(cpuNode(fmt.Sprintf("n%04d", i)), &fakeAgent{}); err != nil {
			b.Fatal(err)
		}
	}
	submit := func(count int) []uint64 {
		src := jobSrc(fmt.Sprintf("  resources { cpus = 8 }\n  array { count = %d }", count))
		resp, err := s.Submit(Caller{}, api.SubmitRequest{Filename: filepath.Join(dir, "job.hcl"), Source: src, Cwd: dir})
		if err != nil {
			b.Fatal(err)
		}
		return resp.IDs
	}
	long := submit(nodes) // one long job per node
	ctx := context.Background()
	s.scheduleOnce(ctx, time.Now())
	s.launches.Wait()
	if stopping {
		// Cancelled, still running: the fake agents never end them.
		if _, err := s.updateJobs(long, func(j *job) error { j.CancelRequested = true; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	for left := pending; left > 0; left -= 10_000 {
		submit(min(left, 10_000))
	}
	var snap time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		s.mu.Lock()
		sn := s.snapshotLocked()
		s.mu.Unlock()
		snap += time.Since(t0)
		if len(sn.Pending) != pending || len(sn.Running) != nodes {
			b.Fatalf("snapshot: %d pending, %d running; want %d and %d", len(sn.Pending), len(sn.Running), pending, nodes)
		}
		s.scheduleOnce(ctx, time.Now())
	}
	b.ReportMetric(float64(snap.Microseconds())/1000/float64(b.N), "snapshot-ms")
}
