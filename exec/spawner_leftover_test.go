package exec

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSpawnerLeftoversDieWithTheJob: processes a job leaves behind (a new
// session ignoring SIGTERM and SIGHUP, a new process group) are gone once
// its outcome is known, before its slot can serve another job; a fork
// bomb stays within its pids limit while the spawner serves other jobs.
func TestSpawnerLeftoversDieWithTheJob(t *testing.T) {
	t.Run("spawner/check", func(t *testing.T) {
		te := newTestExecutor(t, "")
		if te.sp == nil {
			t.Skip("no spawner on this host")
		}
		a := te.spec(`setsid sh -c 'trap "" TERM HUP; sleep 300' </dev/null >/dev/null 2>&1 &
perl -e 'setpgrp(0,0); $SIG{TERM}="IGNORE"; if (fork() == 0) { sleep 300 } ; sleep 300' </dev/null >/dev/null 2>&1 &
sleep 0.2; echo started`)
		o := te.run(t, a)
		if o.State != StateCompleted {
			t.Fatalf("job: %+v", o)
		}
		if p := jobProcesses(a.JobID); len(p) > 0 {
			t.Errorf("processes of the job alive after its outcome: %v", p)
		}

		bomb := te.spec(`b() { b | b & }; b; sleep 300`)
		bomb.Pids, bomb.CPUSet = 64, []int{0}
		hb, err := te.Launch(context.Background(), bomb)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		for i := 0; i < 5; i++ {
			if o := te.run(t, te.spec("true")); o.State != StateCompleted {
				t.Errorf("job beside a fork bomb: %+v", o)
			}
		}
		hb.Cancel("bomb")
		// The bomb's own shell may die of the limit first (FAILED, its
		// own exit) or be cancelled: never the host's failure.
		if o := wait(t, hb); (o.State != StateCancelled && o.State != StateFailed) || o.HostFailure {
			t.Errorf("fork bomb: %+v, want CANCELLED or its own FAILED", o)
		}
		if p := jobProcesses(bomb.JobID); len(p) > 0 {
			t.Errorf("processes of the bomb alive after its outcome: %d", len(p))
		}
	})
}

// TestSpawnerCancelBurst: 60 running jobs cancelled at once all end
// CANCELLED with nothing left running.
func TestSpawnerCancelBurst(t *testing.T) {
	t.Run("spawner/check", func(t *testing.T) {
		te := newTestExecutor(t, "")
		if te.sp == nil {
			t.Skip("no spawner on this host")
		}
		var hs []*Handle
		var ids []uint64
		for i := 0; i < 60; i++ {
			s := te.spec("trap '' TERM; sleep 300 & sleep 300")
			h, err := te.Launch(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			hs, ids = append(hs, h), append(ids, s.JobID)
		}
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Add(1)
			go func() { defer wg.Done(); h.Cancel(fmt.Sprint("burst ", i)) }()
		}
		wg.Wait()
		for i, h := range hs {
			if o := wait(t, h); o.State != StateCancelled {
				t.Errorf("job %d: %+v", ids[i], o)
			}
			if p := jobProcesses(ids[i]); len(p) > 0 {
				t.Errorf("job %d left %v", ids[i], p)
			}
		}
	})
}
