// Package agent runs a node's part of the cluster: it turns the server's
// assignments into executor launches, watches them, reports their
// outcomes, and after a restart of either side adopts the jobs that still
// run and kills the ones the server no longer knows.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/exec"
	"github.com/hpc-sched/hpc/resources/inventory"
)

// Local is the agent of the machine it runs on, called in process.
type Local struct {
	ctx    context.Context
	name   string
	ex     *exec.Executor
	report func(api.Outcome)
	log    *slog.Logger

	minors    map[int]int   // GPU index -> /dev/nvidiaN minor
	gpuMem    map[int]int64 // GPU index -> bytes, for sharing jobs' memory caps
	allMinors []int

	mu      sync.Mutex
	handles map[uint64]*exec.Handle
	// ckptErrs: the last failed checkpoint per job (checkpoint.go).
	ckptErrs map[uint64]string
	// gpuUse measures the GPUs of the jobs it launches (gpuusage.go).
	gpuUse *GPUSampler
}

// New makes the agent of node name. report receives every outcome; ctx
// bounds the watchers: when it ends, running jobs are left running for the
// next agent to adopt.
func New(ctx context.Context, name string, ex *exec.Executor, gpus []inventory.GPU, report func(api.Outcome), log *slog.Logger) *Local {
	l := &Local{ctx: ctx, name: name, ex: ex, report: report, log: log, minors: map[int]int{}, gpuMem: map[int]int64{}, handles: map[uint64]*exec.Handle{}}
	for _, g := range gpus {
		l.gpuMem[g.Index] = g.Memory
		if g.Minor >= 0 {
			l.minors[g.Index] = g.Minor
			l.allMinors = append(l.allMinors, g.Minor)
		}
	}
	sort.Ints(l.allMinors)
	return l
}

// Registration describes the node to the server: its schedulable CPUs,
// memory (less what the system keeps for itself), GPUs and their links.
func Registration(name string, inv inventory.Inventory, isolation string, features []string, reserveMemory int64) api.NodeRegistration {
	reg := api.NodeRegistration{
		Name:      name,
		CPUIDs:    inv.CPUIDs,
		Memory:    inv.Memory - reserveMemory,
		Links:     inv.Links,
		Features:  features,
		Isolation: isolation,
	}
	for _, g := range inv.GPUs {
		reg.GPUs = append(reg.GPUs, api.GPU{Index: g.Index, UUID: g.UUID, Model: g.Model, Memory: g.Memory, NUMANode: g.NUMANode, PCIBusID: g.PCIBusID})
	}
	return reg
}

// spec converts an assignment into what the executor runs.
func (l *Local) spec(a api.Assignment) (exec.Spec, error) {
	env := a.Env
	if len(a.NodeList) > 0 {
		// Every part of a multi-node job learns its place in the gang.
		rank := slices.Index(a.NodeList, l.name)
		env = append(slices.Clip(env), "HPC_NODE_RANK="+strconv.Itoa(max(rank, 0)), "HPC_NNODES="+strconv.Itoa(len(a.NodeList)))
	}
	s := exec.Spec{
		JobID: a.JobID, Name: a.Name, User: a.User,
		Argv: a.Argv, Script: a.Script, Env: env, Dir: a.Workdir,
		UID: a.UID, GID: a.GID, Groups: a.Groups,
		Stdout: a.Stdout, Stderr: a.Stderr,
		CPUSet: a.CPUs, Memory: a.Memory,
		AllGPUMinors: l.allMinors,
		NodeList:     a.NodeList, ArrayIndex: a.ArrayIndex, RestartCount: a.RestartCount,
		CheckpointDir: a.CheckpointDir,
		Walltime:      a.Walltime, WarnBefore: a.WarnBefore, Umask: a.Umask,
		FenceAfter: a.FenceAfter,
	}
	for _, idx := range a.GPUs {
		minor, ok := l.minors[idx]
		if !ok {
			minor = -1
		}
		s.GPUs = append(s.GPUs, exec.GPUDevice{Index: idx, Minor: minor, Memory: l.gpuMem[idx]})
	}
	s.GPUShare = a.GPUShare
	s.RestoreFrom = restoreFrom(a)
	if a.WarnSignal != "" {
		sig := unix.SignalNum(a.WarnSignal)
		if sig == 0 {
			return s, fmt.Errorf("unknown signal %q", a.WarnSignal)
		}
		s.WarnSignal = sig
	}
	return s, nil
}

// Launch starts the job and watches it in the background.
func (l *Local) Launch(ctx context.Context, a api.Assignment) error {
	s, err := l.spec(a)
	if err != nil {
		return err
	}
	h, err := l.ex.Launch(ctx, s)
	if err != nil {
		return err
	}
	l.gpuUse.Track(a.JobID, a.GPUs, a.GPUShare > 0, h.PID)
	l.watch(a.JobID, a.Attempt, h)
	return nil
}

// watch reports the job's outcome when it ends; attempt goes with it, so
// the outcome of a run the server has replaced is told apart.
func (l *Local) watch(id, attempt uint64, h *exec.Handle) {
	l.mu.Lock()
	l.handles[id] = h
	l.mu.Unlock()
	if attempt == 0 {
		l.trackAdopted(id, h) // adopted after a restart: measured from now on
	}
	go func() {
		o, err := h.Wait(l.ctx)
		gpus := l.gpuUse.Finish(id)
		if l.ctx.Err() != nil {
			return // shutting down: the job keeps running and is adopted later
		}
		if err != nil {
			l.log.Error("waiting for job", "job", id, "err", err)
			l.report(api.Outcome{JobID: id, Node: l.name, State: api.StateNodeFail, ExitCode: 1, HostFailure: true,
				Attempt: attempt, Reason: fmt.Sprintf("agent lost track of the job: %v", err)})
			return
		}
		out := outcome(l.name, id, o)
		out.Attempt = attempt
		out.CheckpointError = l.takeCheckpointError(id)
		out.GPUUsage = gpus
		l.report(out)
	}()
}

// AdoptAll reattaches to every job the executor has state for, when the
// agent starts: still running, or ended with the result on disk (its
// outcome is reported at once). adopted is told of each before its watch
// begins. A job that cannot be adopted is killed and forgotten.
func (l *Local) AdoptAll(adopted func(id uint64)) ([]uint64, error) {
	known, err := l.ex.Known()
	if err != nil {
		return nil, fmt.Errorf("list jobs on disk: %w", err)
	}
	var ids []uint64
	for _, id := range known {
		h, err := l.ex.Adopt(id)
		if err != nil {
			l.log.Warn("cannot adopt job; killing what is left of it", "job", id, "err", err)
			if rerr := l.ex.Release(id); rerr != nil {
				l.log.Error("kill unadoptable job", "job", id, "err", rerr)
			}
			continue
		}
		adopted(id)
		l.log.Info("adopted job", "job", id, "pid", h.PID())
		l.watch(id, 0, h)
		ids = append(ids, id)
	}
	return ids, nil
}

// RenewLeases extends the leases of the jobs it watches to at (see
// Runner's LeaseRenewer); jobs without one are left alone.
func (l *Local) RenewLeases(at time.Time) {
	l.mu.Lock()
	ids := make([]uint64, 0, len(l.handles))
	for id := range l.handles {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		if err := l.ex.RenewLease(id, at); err != nil {
			l.log.Warn("renew lease", "job", id, "err", err)
		}
	}
}

// SetReport sets where outcomes go (a Runner's Report); call it before
// any launch or adoption.
func (l *Local) SetReport(report func(api.Outcome)) { l.report = report }

func outcome(node string, id uint64, o exec.Outcome) api.Outcome {
	state := api.JobState(o.State)
	if o.Fenced {
		// The shim stopped it: the node lost its server or its agent.
		state = api.StateNodeFail
	}
	return api.Outcome{
		JobID: id, Node: node, State: state, ExitCode: o.ExitCode, Signal: o.Signal, Reason: o.Reason,
		NeverStarted: o.NeverStarted, HostFailure: o.HostFailure,
		Start: o.Start, End: o.End,
		Usage: api.Usage{
			ElapsedSeconds: o.Usage.Elapsed.Seconds(),
			CPUSeconds:     o.Usage.CPUTime.Seconds(),
			PeakMemory:     o.Usage.PeakMemory,
		},
	}
}

// Cancel kills the job's whole process tree; its outcome follows as usual.
func (l *Local) Cancel(id uint64, reason string) error {
	h, err := l.handle(id)
	if err != nil {
		return err
	}
	return h.Cancel(reason)
}

func (l *Local) handle(id uint64) (*exec.Handle, error) {
	l.mu.Lock()
	h := l.handles[id]
	l.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("job %d does not run on %s", id, l.name)
	}
	return h, nil
}

// Signal sends the signal named sig (e.g. "SIGUSR1") to the job's processes.
func (l *Local) Signal(id uint64, sig string) error {
	num := unix.SignalNum(sig)
	if num == 0 {
		return fmt.Errorf("signal job %d: unknown signal %q", id, sig)
	}
	h, err := l.handle(id)
	if err != nil {
		return err
	}
	return h.Signal(num)
}

// Release forgets a job whose outcome the server has stored.
func (l *Local) Release(id uint64) error {
	l.mu.Lock()
	delete(l.handles, id)
	l.mu.Unlock()
	return l.ex.Release(id)
}

// Reconcile adopts the jobs of running that the executor still knows
// (still running, or finished with their result on disk), kills and
// forgets every other job it has, and returns those of running it has no
// trace of.
func (l *Local) Reconcile(running []uint64) ([]uint64, error) {
	want := map[uint64]bool{}
	for _, id := range running {
		want[id] = true
	}
	known, err := l.ex.Known()
	if err != nil {
		return nil, fmt.Errorf("list jobs on disk: %w", err)
	}
	for _, id := range known {
		if want[id] {
			continue
		}
		// The server does not run this job (it ended while we were down,
		// or was never acknowledged): make sure nothing of it is left.
		if h, err := l.ex.Adopt(id); err == nil {
			if err := h.Cancel("unknown to the server"); err != nil {
				l.log.Warn("kill unknown job", "job", id, "err", err)
			}
			h.Wait(l.ctx)
		}
		if err := l.ex.Release(id); err != nil {
			l.log.Warn("forget unknown job", "job", id, "err", err)
		}
		l.log.Info("removed a job the server does not run", "job", id)
	}
	var lost []uint64
	for _, id := range running {
		h, err := l.ex.Adopt(id)
		if err != nil {
			if !errors.Is(err, exec.ErrUnknownJob) {
				// Known but not adoptable (e.g. the isolation mode changed):
				// it must not go on running unwatched while the server
				// treats it as lost.
				l.log.Warn("cannot adopt job; killing what is left of it", "job", id, "err", err)
				if rerr := l.ex.Release(id); rerr != nil {
					l.log.Error("kill unadoptable job", "job", id, "err", rerr)
				}
			}
			lost = append(lost, id)
			continue
		}
		l.log.Info("adopted running job", "job", id, "pid", h.PID())
		l.watch(id, 0, h)
	}
	return lost, nil
}
