package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSpawnerLeftoversDieWithTheJob: processes a job leaves behind (a new
// session ignoring SIGTERM and SIGHUP, a new process group) are gone once
// its outcome is known, before its slot can serve another job; a fork
// bomb stays within its pids limit while the spawner serves other jobs.
func TestSpawnerLeftoversDieWithTheJob(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
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
	spawnerCheck(t, func(t *testing.T, te *testExec) {
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

// TestSpawnerSlotDeviceRulesFollowTheJob: GPU device rules of the jobs
// that used a slot before do not stay on it: each job in the reused slot
// opens exactly its own GPUs (device nodes made here: an allowed one with
// no driver says ENXIO, a denied one EPERM).
func TestSpawnerSlotDeviceRulesFollowTheJob(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		for i := 0; i < 2; i++ {
			p := filepath.Join(te.dir, fmt.Sprintf("nv%d", i))
			if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(nvidiaMajor, uint32(i)))); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
		}
		script := "for d in nv0 nv1; do head -c1 " + te.dir + "/$d 2>&1 | sed 's/.*: //'; done"
		const denied, allowed = "Operation not permitted", "No such device or address"
		for _, tc := range []struct {
			name string
			gpus []GPUDevice
			all  []int
			want [2]string
		}{
			{"no GPU of two", nil, []int{0, 1}, [2]string{denied, denied}},
			{"GPU 0", []GPUDevice{{Index: 0, Minor: 0}}, []int{0, 1}, [2]string{allowed, denied}},
			{"a node without GPUs", nil, nil, [2]string{allowed, allowed}},
			{"GPU 1", []GPUDevice{{Index: 1, Minor: 1}}, []int{0, 1}, [2]string{denied, allowed}},
		} {
			s := te.spec(script)
			s.AllGPUMinors, s.GPUs = tc.all, tc.gpus
			if o := te.run(t, s); o.State != StateCompleted {
				t.Fatalf("%s: %+v", tc.name, o)
			}
			if got, want := readFile(t, s.Stdout), tc.want[0]+"\n"+tc.want[1]+"\n"; got != want {
				t.Errorf("%s: opening GPUs 0 and 1 says\n%s want\n%s", tc.name, got, want)
			}
			if err := te.Release(s.JobID); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSpawnerSlotLeftoverShmNotCharged: a job that leaves 150 MiB in
// /dev/shm (tmpfs, no swap: nothing reclaims it) does not make the next
// job of its slot pay for it, whether the slot was released to the same
// spawner or left to the next one by a kill -9: that job, using 150 MiB
// of its 256 MiB, completes, and its peak memory is its own.
func TestSpawnerSlotLeftoverShmNotCharged(t *testing.T) {
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		for _, killed := range []bool{false, true} {
			shm := fmt.Sprintf("/dev/shm/hpc-test-%d-%d", os.Getpid(), jobSeq.Load())
			t.Cleanup(func() { os.Remove(shm) })
			a := te.spec("head -c 150M /dev/zero > " + shm)
			a.Memory = 512 << 20
			if o := te.run(t, a); o.State != StateCompleted {
				t.Fatalf("first job: %+v", o)
			}
			if killed {
				killSpawner(t, te)
			}
			if err := te.Release(a.JobID); err != nil {
				t.Fatal(err)
			}
			b := te.spec("head -c 150M /dev/zero | tail > /dev/null")
			b.Memory = 256 << 20
			o := te.run(t, b)
			if o.State != StateCompleted {
				t.Errorf("spawner killed %v: next job: %+v, want COMPLETED: the last job's /dev/shm files counted against its limit", killed, o)
			}
			if o.Usage.PeakMemory >= 240<<20 {
				t.Errorf("spawner killed %v: next job's peak memory %d MiB: the last job's /dev/shm files are in it", killed, o.Usage.PeakMemory>>20)
			}
			if err := te.Release(b.JobID); err != nil {
				t.Fatal(err)
			}
		}
	})
}
