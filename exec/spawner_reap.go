package exec

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// How the spawner's jobs end: walltime timers, the reaper that collects
// every child, the classification of a job's outcome once its main process
// has exited, and the fence that kills jobs whose lease ran out.

// armTimers sets the walltime warning, the walltime and its grace.
func (sp *spawner) armTimers(j *sjob) {
	s := j.spec
	if s.Walltime <= 0 {
		return
	}
	pid := j.pid
	if s.WarnSignal != 0 && s.WarnBefore > 0 && s.WarnBefore < s.Walltime {
		j.timers = append(j.timers, time.AfterFunc(s.Walltime-s.WarnBefore, func() { _ = unix.Kill(-pid, s.WarnSignal) }))
	}
	j.timers = append(j.timers, time.AfterFunc(s.Walltime, func() {
		sp.mu.Lock()
		if j.reaped {
			sp.mu.Unlock()
			return
		}
		j.timedOut = true
		sp.mu.Unlock()
		_ = unix.Kill(-pid, unix.SIGTERM)
		_ = unix.Kill(pid, unix.SIGTERM)
		time.AfterFunc(sp.cfg.KillGrace, func() {
			sp.mu.Lock()
			done := j.reaped
			sp.mu.Unlock()
			if !done {
				_ = j.slot.killAll()
			}
		})
	}))
}

// reaper collects every child (jobs and orphans re-parented to us).
func (sp *spawner) reaper(sigc <-chan os.Signal) {
	for range sigc {
		for {
			var ws unix.WaitStatus
			var ru unix.Rusage
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, &ru)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			sp.mu.Lock()
			j := sp.byPID[pid]
			if j != nil {
				delete(sp.byPID, pid)
			}
			sp.mu.Unlock()
			if j != nil {
				sp.finish(j, ws, ru, "")
			}
		}
	}
}

// finish classifies a job's end once its main process has exited: the rest
// of its cgroup is killed first, then the counters are read.
func (sp *spawner) finish(j *sjob, ws unix.WaitStatus, ru unix.Rusage, startErr string) {
	end := time.Now()
	sp.mu.Lock()
	j.reaped = true
	for _, t := range j.timers {
		t.Stop()
	}
	sp.mu.Unlock()
	if !j.slot.empty() {
		if err := j.slot.killAll(); err != nil {
			sp.log.Warn("leftover processes", "job", j.id, "err", err)
		}
	}
	oom, _ := j.slot.oomKills()
	cpu, peak, ok := j.slot.usage()
	if !ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	peak = max(peak, ru.Maxrss*1024)
	sp.mu.Lock()
	c := j.cancel
	fenced := j.fenced
	timedOut := j.timedOut
	sp.mu.Unlock()
	f := exitFacts{status: ws, timedOut: timedOut, oomKills: oom - min(oom, j.oomBase), spec: j.spec, isolation: IsolationV1, startErr: startErr}
	if c != nil {
		f.cancelled, f.cancelReason = true, c.Reason
	}
	o := classify(f)
	if fenced > 0 && o.State != StateCompleted {
		o.State, o.HostFailure, o.Fenced = StateFailed, true, true
		o.Reason = fmt.Sprintf("self-fenced: the agent's lease was not renewed for %s (the node lost the server or its agent died)", fenced.Round(time.Millisecond))
	}
	o.Start, o.End = j.start, end
	o.Usage = Usage{Elapsed: end.Sub(j.start), CPUTime: cpu, PeakMemory: peak}
	j.pendingO = &o
	sp.mu.Lock()
	sp.inflight++
	sp.mu.Unlock()
	sp.outq <- j
}

// fence kills the leased jobs whose lease ran out: the agent has not heard
// from the server (or is dead) for almost the DOWN timeout, and the server
// is about to run them elsewhere.
func (sp *spawner) fence() {
	for {
		sp.mu.Lock()
		tick := 100 * time.Millisecond
		var stop []*sjob
		for _, j := range sp.jobs {
			fa := j.spec.FenceAfter
			if fa <= 0 || j.reaped || j.fenced > 0 {
				continue
			}
			tick = min(tick, leaseTick(fa))
			at := j.start
			if j.lease.After(at) {
				at = j.lease
			}
			if age := time.Since(at); age >= fa {
				j.fenced = age
				stop = append(stop, j)
			}
		}
		sp.mu.Unlock()
		for _, j := range stop {
			sp.log.Warn("lease expired: fencing the job", "job", j.id, "lease_age", j.fenced)
			_ = j.slot.killAll()
		}
		time.Sleep(tick)
	}
}
