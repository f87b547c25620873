// Package virtual runs virtual nodes: agents whose "jobs" run nothing but
// hold the resources the server gave them for a while, then complete. It
// is a test and scale tool — `hpcd agent --virtual N --node-class FILE`
// stands up a thousand-node cluster of the kinds a node-class file
// describes on one machine, to exercise the server, the agent protocol and
// placement at a size no test host has. Nothing it reports is usage of a
// real process: CPU time and memory peaks are zero.
//
// A job's part holds its node's resources for HPC_VIRTUAL_RUNTIME seconds
// (from the job's environment; a decimal number, default the job's
// walltime) and then ends COMPLETED, or FAILED with HPC_VIRTUAL_EXIT when
// that is set and not 0. A runtime beyond the walltime ends TIMEOUT at the
// walltime, and a signal acts as on a process that handles none (SIGTERM
// ends it, SIGCONT does nothing), as a real job would.
package virtual

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
)

// Environment variables a job sets to steer its virtual run.
const (
	EnvRuntime = "HPC_VIRTUAL_RUNTIME" // seconds the job holds its resources
	EnvExit    = "HPC_VIRTUAL_EXIT"    // exit code it ends with (0: COMPLETED)
)

// Isolation is what virtual nodes register as their isolation mode, so
// `hpcsub nodes` shows them for what they are.
const Isolation = "virtual"

// maxRuntime bounds HPC_VIRTUAL_RUNTIME as jobs bound walltimes (a year).
const maxRuntime = 365 * 24 * time.Hour

// Node is one virtual node's executor: it takes the server's assignments
// for the node and reports their outcomes through report.
type Node struct {
	name   string
	report func(api.Outcome)
	log    *slog.Logger
	now    func() time.Time

	mu   sync.Mutex
	jobs map[uint64]*run
}

// run is one job's part on the node. ended is set once its outcome has
// been decided, so a cancel racing the timer reports once.
type run struct {
	start time.Time
	timer *time.Timer
	ended bool
}

// New makes virtual node name, an agent.Executor. report receives every
// outcome; it is called without any lock of the node held, so it may call
// back into the node.
func New(name string, report func(api.Outcome), log *slog.Logger) *Node {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{name: name, report: report, log: log, now: time.Now, jobs: map[uint64]*run{}}
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// plan is how a virtual run ends: after d, in state with code.
type plan struct {
	d      time.Duration
	state  api.JobState
	code   int
	signal string // the signal that ended it, if one did
	reason string
}

// planFor reads the job's environment. A value that is not a number of
// seconds is the submitter's mistake: the job fails at once and says why.
func planFor(a api.Assignment) plan {
	runtime, code := a.Walltime, 0
	if v, ok := lookup(a.Env, EnvRuntime); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || math.IsNaN(f) || f > maxRuntime.Seconds() {
			return plan{state: api.StateFailed, code: 1,
				reason: fmt.Sprintf("%s=%q: want a number of seconds from 0 to %d", EnvRuntime, v, int64(maxRuntime.Seconds()))}
		}
		runtime = time.Duration(f * float64(time.Second))
	}
	if v, ok := lookup(a.Env, EnvExit); ok {
		c, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || c < 0 || c > 255 {
			return plan{state: api.StateFailed, code: 1, reason: fmt.Sprintf("%s=%q: want an exit code from 0 to 255", EnvExit, v)}
		}
		code = c
	}
	switch {
	case a.Walltime > 0 && runtime > a.Walltime:
		return plan{d: a.Walltime, state: api.StateTimeout, code: 0, reason: "walltime reached (virtual run)"}
	case code != 0:
		return plan{d: runtime, state: api.StateFailed, code: code, reason: fmt.Sprintf("exited with code %d (virtual run)", code)}
	}
	return plan{d: runtime, state: api.StateCompleted}
}

// lookup finds key in a KEY=VALUE environment; the last one wins, as in
// a process's environment built by appending.
func lookup(env []string, key string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}

// Launch starts holding the job's resources. A job the node already holds
// is refused: the server gives each job to a node once.
func (n *Node) Launch(_ context.Context, a api.Assignment) error {
	p := planFor(a)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.jobs[a.JobID]; ok {
		return fmt.Errorf("job %d already runs on %s", a.JobID, n.name)
	}
	r := &run{start: n.now()}
	n.jobs[a.JobID] = r
	r.timer = time.AfterFunc(p.d, func() { n.end(a.JobID, r, p) })
	return nil
}

// end reports the run's outcome unless it ended already (cancelled).
func (n *Node) end(id uint64, r *run, p plan) {
	n.mu.Lock()
	if r.ended || n.jobs[id] != r {
		n.mu.Unlock()
		return
	}
	r.ended = true
	n.mu.Unlock()
	end := n.now()
	n.report(api.Outcome{
		JobID: id, Node: n.name, State: p.state, ExitCode: p.code, Signal: p.signal, Reason: p.reason,
		Start: r.start, End: end,
		Usage: api.Usage{ElapsedSeconds: end.Sub(r.start).Seconds()},
	})
}

// Cancel ends the job now, CANCELLED with reason.
func (n *Node) Cancel(id uint64, reason string) error {
	r, err := n.job(id)
	if err != nil {
		return err
	}
	if r.timer.Stop() {
		go n.end(id, r, plan{state: api.StateCancelled, code: 0, reason: reason})
	}
	// A timer that already fired reports its own outcome: nothing to do.
	return nil
}

// Signal delivers sig to the job as to a process that handles no signal:
// one whose default action ends a process (SIGTERM, SIGINT, SIGUSR1,
// SIGKILL, ...) ends the job now, FAILED with 128+signo as a killed
// process would (the server makes that CANCELLED when a cancel sent it);
// any other is ignored.
func (n *Node) Signal(id uint64, sig string) error {
	r, err := n.job(id)
	if err != nil {
		return err
	}
	num := unix.SignalNum(sig)
	if num == 0 {
		return fmt.Errorf("unknown signal %q", sig)
	}
	if !terminates(num) {
		n.log.Debug("virtual job ignores a signal", "node", n.name, "job", id, "signal", sig)
		return nil
	}
	if r.timer.Stop() {
		go n.end(id, r, plan{state: api.StateFailed, code: 128 + int(num), signal: sig,
			reason: "killed by signal " + sig + " (virtual run)"})
	}
	return nil
}

// terminates reports whether a signal's default action ends a process.
func terminates(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH,
		unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}

// Release forgets a job whose outcome the server has stored.
func (n *Node) Release(id uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r, ok := n.jobs[id]; ok {
		r.timer.Stop()
		delete(n.jobs, id)
	}
	return nil
}

// job is the run of job id the node holds.
func (n *Node) job(id uint64) (*run, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %d does not run on %s", id, n.name)
	}
	return r, nil
}

// held reports whether the node holds job id (running or ended, not
// released).
func (n *Node) held(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.jobs[id]
	return ok
}

// Registration is what virtual node nd tells the server: CPUs 0..n-1, its
// memory, GPUs with made-up UUIDs that say they are virtual, its links and
// features.
func Registration(nd nodeclass.Node) api.NodeRegistration {
	reg := api.NodeRegistration{
		Name:      nd.Name,
		CPUIDs:    make([]int, nd.CPUs),
		Memory:    nd.Memory,
		Links:     nd.Links,
		Features:  nd.Features,
		Isolation: Isolation,
		Virtual:   true,
	}
	for i := range reg.CPUIDs {
		reg.CPUIDs[i] = i
	}
	for _, g := range nd.GPUs {
		reg.GPUs = append(reg.GPUs, api.GPU{Index: g.Index, UUID: fmt.Sprintf("GPU-virtual-%s-%d", nd.Name, g.Index),
			Model: g.Model, Memory: g.Memory, NUMANode: g.NUMANode})
	}
	return reg
}
