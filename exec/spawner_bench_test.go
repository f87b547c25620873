package exec

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// procCPU is the CPU time of pid, its own and its reaped children's
// (utime+stime, cutime+cstime of /proc/PID/stat).
func procCPU(b *testing.B, pid int) (self, children time.Duration) {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+2:]))
	var v [4]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[11+i], 10, 64)
	}
	const tick = 10 * time.Millisecond // USER_HZ = 100
	return time.Duration(v[0]+v[1]) * tick, time.Duration(v[2]+v[3]) * tick
}

// BenchmarkLaunchTrivial runs b.N jobs of /bin/true, 8 at a time, each
// launched, waited for and released as the agent does, through the shim
// or through the node's spawner, and reports the CPU per job of the
// launching process (the agent: this test binary, which reaps the shims)
// and of the spawner with its jobs.
func BenchmarkLaunchTrivial(b *testing.B) {
	requireRoot(b)
	for _, mode := range []string{"shim", "spawner"} {
		b.Run(mode, func(b *testing.B) {
			parent := fmt.Sprintf("hpc-bench-%d-%d", os.Getpid(), parentSeq.Add(1))
			root, err := os.MkdirTemp("", "hpc-exec-bench-*")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(root)
			os.Chmod(root, 0o755)
			e, err := New(Config{StateDir: filepath.Join(root, "state"), CgroupParent: parent, KillGrace: time.Second, AllowRoot: true, Spawner: mode == "spawner"}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			spec := func(id uint64) Spec {
				// As an array task: its own output file, one of the CPUs.
				out := filepath.Join(root, fmt.Sprintf("hpc-%d.out", id))
				return Spec{JobID: id, Name: "bench", User: "root", Argv: []string{"/bin/true"}, Env: []string{"PATH=/usr/bin:/bin"},
					Dir: root, Stdout: out, Stderr: out, ArrayIndex: int(id), CPUSet: []int{int(id % 2)}, Memory: 1 << 30}
			}
			run := func(id uint64) {
				h, err := e.Launch(context.Background(), spec(id))
				if err != nil {
					b.Error(err)
					return
				}
				if o, err := h.Wait(context.Background()); err != nil || o.State != StateCompleted {
					b.Errorf("job %d: %+v %v", id, o, err)
				}
				if err := e.Release(id); err != nil {
					b.Error(err)
				}
			}
			run(1) // starts the spawner
			spPID := 0
			if e.sp != nil {
				var id procIdentity
				if err := readJSON(filepath.Join(e.sp.dir, spawnerPID), &id); err != nil {
					b.Fatal(err)
				}
				spPID = id.PID
			}
			a0, ac0 := procCPU(b, os.Getpid())
			var s0, sc0 time.Duration
			if spPID > 0 {
				s0, sc0 = procCPU(b, spPID)
			}
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			ids := make(chan uint64)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for id := range ids {
						run(id)
					}
				}()
			}
			for i := 0; i < b.N; i++ {
				ids <- uint64(i + 2)
			}
			close(ids)
			wg.Wait()
			b.StopTimer()
			el := time.Since(start)
			a1, ac1 := procCPU(b, os.Getpid())
			var s1, sc1 time.Duration
			if spPID > 0 {
				s1, sc1 = procCPU(b, spPID)
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
			b.ReportMetric(per(a1-a0), "agent-cpu-ms/job")
			b.ReportMetric(per(ac1-ac0), "shims-jobs-cpu-ms/job")
			b.ReportMetric(per(s1-s0), "spawner-cpu-ms/job")
			b.ReportMetric(per(sc1-sc0), "spawner-jobs-cpu-ms/job")
			b.ReportMetric(per(a1-a0+ac1-ac0+s1-s0+sc1-sc0), "total-cpu-ms/job")
		})
	}
}
