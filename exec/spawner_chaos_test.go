package exec

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSpawnerKill9Chaos: the spawner is killed -9 five times while 200
// short jobs start, run and end: every launched job ends exactly once,
// COMPLETED or FAILED as the host's failure, and nothing is left running.
func TestSpawnerKill9Chaos(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		first := te.spec("true")
		if o := te.run(t, first); o.State != StateCompleted {
			t.Fatal(o)
		}
		if err := te.Release(first.JobID); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var kills int
		go func() {
			for i := 0; i < 5; i++ {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
				var id procIdentity
				if readJSON(filepath.Join(te.sp.dir, spawnerPID), &id) == nil && syscall.Kill(id.PID, syscall.SIGKILL) == nil {
					kills++
				}
			}
		}()
		sem := make(chan struct{}, 20)
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[string]int{}
		trace := map[uint64]string{}
		for i := 0; i < 200; i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				s := te.spec("sleep 0.$((RANDOM % 3)); exit 0")
				h, err := te.Launch(context.Background(), s)
				defer func() {
					mu.Lock()
					trace[s.JobID] = fmt.Sprintf("launch err %v", err)
					mu.Unlock()
				}()
				if err != nil {
					mu.Lock()
					counts["launch error"]++
					mu.Unlock()
					// A failed launch runs nothing; the server stores
					// the host failure it reports and releases the job.
					if p := jobProcesses(s.JobID); len(p) > 0 {
						t.Errorf("job %d: launch failed (%v) but it runs: %v", s.JobID, err, p)
					}
					if err := te.Release(s.JobID); err != nil {
						t.Errorf("release %d: %v", s.JobID, err)
					}
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				o, err := h.Wait(ctx)
				mu.Lock()
				switch {
				case err != nil:
					counts["lost"]++
					t.Errorf("job %d: no outcome: %v", s.JobID, err)
				case o.State == StateCompleted:
					counts["completed"]++
				case o.State == StateFailed && o.HostFailure:
					counts["host failure"]++
				default:
					counts["wrong"]++
					t.Errorf("job %d: %+v", s.JobID, o)
				}
				mu.Unlock()
				if err := te.Release(s.JobID); err != nil {
					t.Errorf("release %d: %v", s.JobID, err)
				}
				if p := jobProcesses(s.JobID); len(p) > 0 {
					t.Errorf("job %d left %v", s.JobID, p)
				}
			}()
		}
		wg.Wait()
		close(stop)
		t.Logf("kills %d: %v", kills, counts)
		if l, err := te.sp.call(context.Background(), spawnMsg{Op: "list"}); err != nil || len(l.Jobs) != 0 {
			t.Errorf("the spawner holds %+v (%v)", l.Jobs, err)
			for _, j := range l.Jobs {
				t.Logf("job %d: %s; outcome %+v", j.ID, trace[j.ID], j.O)
			}
		}
		if ids, _ := te.Known(); len(ids) != 0 {
			t.Errorf("jobs still held: %v", ids)
		}
	})
}
