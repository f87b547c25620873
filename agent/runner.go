package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Executor runs one node's jobs for a Runner: Local (real processes in
// cgroups) or a virtual node's fake-time executor. Outcomes go back
// through Runner.Report.
type Executor interface {
	// Launch starts the job's part; once it returns nil an outcome follows
	// some time later (through Runner.Report) whatever happens.
	Launch(ctx context.Context, a api.Assignment) error
	// Cancel kills the job's processes; the outcome follows as usual.
	Cancel(jobID uint64, reason string) error
	// Signal sends a signal (by name, e.g. "SIGUSR1") to the job.
	Signal(jobID uint64, sig string) error
	// Release forgets a job, killing whatever is left of it.
	Release(jobID uint64) error
}

// Transport carries the agent protocol: in process (server.InProcess) or
// over HTTPS with mutual TLS (HTTPS). Errors wrap api.ErrSessionLost when
// the agent must register again and api.ErrAgentRefused when retrying is
// futile.
type Transport interface {
	Register(ctx context.Context, req api.RegisterRequest) (api.RegisterResponse, error)
	Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error)
}

// Config is a Runner's node and settings.
type Config struct {
	Node    api.NodeRegistration
	Version string // defaults to api.Version
	Log     *slog.Logger
	// Health, when set, is asked before every sync for the GPUs' health.
	Health func() []api.GPUHealth
	// Lease: the server is remote and may requeue this node's jobs while
	// the agent is dead, so requeueable jobs are leased (FenceAfter) and the
	// executor's shims stop them when the agent stops renewing. Off for
	// `hpcd dev`, whose agent dies and restarts with its server.
	Lease bool
}

// LeaseRenewer is an Executor whose jobs may hold leases
// (api.Assignment.FenceAfter): the runner renews them all, to the time
// the exchange was sent, after every successful exchange with the server.
type LeaseRenewer interface {
	RenewLeases(at time.Time)
}

// heldJob is a job the runner holds: running, or ended with its outcome
// not yet released by the server.
type heldJob struct {
	attempt uint64
	requeue bool
	fenced  bool // stopped by self-fencing: the node's failure, not the job's
	ended   *api.Outcome
}

// Runner is a node's side of the agent protocol: it registers, syncs
// (heartbeat, outcomes, acknowledgements), applies the server's commands
// to its Executor, keeps the jobs running while the server is away and
// reports what ended meanwhile when it is back. Cut off from the server
// for almost the DOWN timeout, it stops the jobs the server is about to
// requeue (self-fencing), so no job ever runs on both sides of a partition.
type Runner struct {
	cfg Config
	tr  Transport
	ex  Executor
	log *slog.Logger

	mu        sync.Mutex
	jobs      map[uint64]*heldJob
	unsent    []api.Outcome // ended, not yet delivered by a successful exchange
	queues    map[uint64][]api.Command
	session   string
	seq, ack  uint64
	heartbeat time.Duration
	down      time.Duration
	lastOK    time.Time // when the last exchange that succeeded was sent
	fenced    bool
	poke      context.CancelFunc // ends the sync in flight: new outcomes to send
	gpuHealth []api.GPUHealth
}

// NewRunner makes the runner of one node; Run starts it.
func NewRunner(cfg Config, tr Transport, ex Executor) *Runner {
	if cfg.Version == "" {
		cfg.Version = api.Version
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Runner{cfg: cfg, tr: tr, ex: ex, log: cfg.Log.With("node", cfg.Node.Name),
		jobs: map[uint64]*heldJob{}, queues: map[uint64][]api.Command{},
		heartbeat: 5 * time.Second, down: 30 * time.Second}
}

// Adopted tells the runner about a job its executor found still running
// (or ended, its outcome to follow) when the agent started.
func (r *Runner) Adopted(jobID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs[jobID] == nil {
		r.jobs[jobID] = &heldJob{}
	}
}

// Report takes an outcome from the executor. Outcomes of jobs the runner
// no longer holds (released, or of an earlier run) are dropped.
func (r *Runner) Report(o api.Outcome) {
	o.Node = r.cfg.Node.Name
	r.mu.Lock()
	j := r.jobs[o.JobID]
	if j == nil || j.ended != nil || (j.attempt != 0 && o.Attempt != 0 && o.Attempt != j.attempt) {
		r.mu.Unlock()
		r.log.Debug("dropping the outcome of a job no longer held", "job", o.JobID)
		return
	}
	if o.Attempt == 0 {
		o.Attempt = j.attempt
	}
	if j.fenced && o.State != api.StateCompleted {
		// Whatever the server decided meanwhile, this run ended because
		// the node lost the server: a host failure, requeued when allowed.
		o.State, o.HostFailure = api.StateNodeFail, true
		o.Reason = "self-fenced: " + r.cfg.Node.Name + " lost contact with the server"
	}
	j.ended = &o
	r.unsent = append(r.unsent, o)
	poke := r.poke
	r.mu.Unlock()
	if poke != nil {
		poke()
	}
}

// Register opens a session and reconciles; Run does it itself, `hpcd dev`
// calls it first so the node is known before the API opens.
func (r *Runner) Register(ctx context.Context) error {
	r.mu.Lock()
	req := api.RegisterRequest{Protocol: api.ProtocolVersion, AgentVersion: r.cfg.Version, Node: r.cfg.Node, Held: []uint64{}}
	for id, j := range r.jobs {
		req.Held = append(req.Held, id)
		if j.ended != nil {
			req.Ended = append(req.Ended, *j.ended)
		}
	}
	sort.Slice(req.Held, func(i, k int) bool { return req.Held[i] < req.Held[k] })
	sort.Slice(req.Ended, func(i, k int) bool { return req.Ended[i].JobID < req.Ended[k].JobID })
	unsent := len(r.unsent)
	r.mu.Unlock()
	if r.cfg.Health != nil {
		req.GPUHealth = r.cfg.Health()
	}
	sent := time.Now()
	resp, err := r.tr.Register(ctx, req)
	if err != nil {
		return fmt.Errorf("register node %s: %w", r.cfg.Node.Name, err)
	}
	for _, id := range resp.Kill {
		if err := r.ex.Release(id); err != nil {
			r.log.Warn("kill a job the server does not run here", "job", id, "err", err)
		}
	}
	r.mu.Lock()
	for _, id := range resp.Kill {
		delete(r.jobs, id)
		delete(r.queues, id)
	}
	// Everything ended so far went with the registration.
	r.unsent = append(r.unsent[:0:0], r.unsent[unsent:]...)
	r.session, r.seq, r.ack = resp.Session, 0, 0
	if resp.Heartbeat > 0 {
		r.heartbeat = resp.Heartbeat
	}
	if resp.DownTimeout > 0 {
		r.down = resp.DownTimeout
	}
	r.lastOK, r.fenced = sent, false
	r.mu.Unlock()
	r.renewLeases(sent)
	r.log.Info("registered", "adopted", len(resp.Adopt), "killed", len(resp.Kill), "heartbeat", r.heartbeat, "down_timeout", r.down)
	return nil
}

// Run syncs until ctx ends; it returns early only when the server refuses
// the agent itself (api.ErrAgentRefused).
func (r *Runner) Run(ctx context.Context) error {
	go r.fence(ctx)
	failures := 0
	for ctx.Err() == nil {
		r.mu.Lock()
		session := r.session
		r.mu.Unlock()
		var err error
		if session == "" {
			err = r.Register(ctx)
		} else {
			err = r.syncOnce(ctx)
		}
		switch {
		case err == nil:
			failures = 0
			continue
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, api.ErrAgentRefused):
			return err
		case errors.Is(err, api.ErrSessionLost):
			r.log.Info("session lost; registering again", "err", err)
			r.mu.Lock()
			r.session = ""
			r.mu.Unlock()
			continue
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			r.log.Warn("cannot reach the server; jobs keep running", "err", err, "failures", failures)
		}
		r.mu.Lock()
		wait := min(max(r.heartbeat/4, 50*time.Millisecond)*time.Duration(failures), r.heartbeat)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (r *Runner) syncOnce(ctx context.Context) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.seq++
	req := api.SyncRequest{Session: r.session, Seq: r.seq, Ack: r.ack, Wait: r.heartbeat, Running: []uint64{}}
	n := len(r.unsent)
	req.Outcomes = append([]api.Outcome(nil), r.unsent...)
	for id, j := range r.jobs {
		if j.ended == nil {
			req.Running = append(req.Running, id)
		}
	}
	r.poke = cancel // a new outcome cuts a waiting sync short...
	if n > 0 {
		req.Wait = 0 // deliver now, wait in the next one
		// ...but not one that delivers: it returns at once, and cutting it
		// would make the server take these outcomes twice over.
		r.poke = nil
	}
	r.mu.Unlock()
	sort.Slice(req.Running, func(i, k int) bool { return req.Running[i] < req.Running[k] })
	if r.cfg.Health != nil {
		req.GPUHealth = r.cfg.Health()
	}
	sent := time.Now()
	resp, err := r.tr.Sync(pctx, req)
	r.mu.Lock()
	r.poke = nil
	r.mu.Unlock()
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return nil // poked: new outcomes; what this one carried is sent again
		}
		return err
	}
	r.mu.Lock()
	r.unsent = append(r.unsent[:0:0], r.unsent[n:]...)
	r.lastOK = sent
	if r.fenced {
		r.fenced = false
		r.log.Info("server reachable again")
	}
	r.mu.Unlock()
	r.renewLeases(sent)
	r.mu.Lock()
	var fresh []api.Command
	for _, c := range resp.Commands {
		if c.ID > r.ack {
			fresh = append(fresh, c)
			r.ack = c.ID
		}
	}
	r.mu.Unlock()
	for _, c := range fresh {
		r.dispatch(ctx, c)
	}
	return nil
}

// dispatch queues c behind the job's earlier commands: one job's commands
// run in order (a release before a relaunch), different jobs' side by side.
func (r *Runner) dispatch(ctx context.Context, c api.Command) {
	r.mu.Lock()
	q, busy := r.queues[c.JobID]
	r.queues[c.JobID] = append(q, c)
	r.mu.Unlock()
	if !busy {
		go r.drain(ctx, c.JobID)
	}
}

func (r *Runner) drain(ctx context.Context, jobID uint64) {
	for {
		r.mu.Lock()
		q := r.queues[jobID]
		if len(q) == 0 {
			delete(r.queues, jobID)
			r.mu.Unlock()
			return
		}
		c := q[0]
		r.queues[jobID] = q[1:]
		r.mu.Unlock()
		r.apply(ctx, c)
	}
}

func (r *Runner) apply(ctx context.Context, c api.Command) {
	switch c.Kind {
	case api.CommandLaunch:
		if c.Launch == nil || c.Launch.JobID != c.JobID {
			r.log.Warn("ignoring a malformed launch", "job", c.JobID)
			return
		}
		a := *c.Launch
		r.mu.Lock()
		if h := r.jobs[a.JobID]; h != nil && !newerRun(a.Attempt, h.attempt) {
			// Already held (running, or ended and not yet released): a
			// second delivery of the same run, or a launch of an earlier
			// one, must not start the job twice. Nothing is reported for
			// it: the held run's own outcome is the job's.
			r.mu.Unlock()
			r.log.Warn("refusing a launch of a job already held", "job", a.JobID, "attempt", a.Attempt, "held_attempt", h.attempt)
			return
		}
		r.jobs[a.JobID] = &heldJob{attempt: a.Attempt, requeue: a.Requeue}
		if r.cfg.Lease && a.Requeue {
			// The runner's own fence rule: gone before the server marks
			// the node DOWN and requeues the job, even if the agent is.
			a.FenceAfter = r.down - r.heartbeat
		}
		r.mu.Unlock()
		if err := r.ex.Launch(ctx, a); err != nil {
			r.log.Warn("launch failed", "job", a.JobID, "err", err)
			r.Report(api.Outcome{JobID: a.JobID, State: api.StateFailed, ExitCode: 1, HostFailure: true,
				Attempt: a.Attempt, End: time.Now(),
				Reason: fmt.Sprintf("could not start on %s: %v", r.cfg.Node.Name, err)})
		}
	case api.CommandCancel:
		if err := r.ex.Cancel(c.JobID, c.Reason); err != nil {
			r.log.Debug("cancel", "job", c.JobID, "err", err)
		}
	case api.CommandSignal:
		if err := r.ex.Signal(c.JobID, c.Signal); err != nil {
			r.log.Info("signal", "job", c.JobID, "signal", c.Signal, "err", err)
		}
	case api.CommandCheckpoint:
		r.checkpoint(c)
	case api.CommandRelease:
		r.mu.Lock()
		delete(r.jobs, c.JobID)
		r.mu.Unlock()
		if err := r.ex.Release(c.JobID); err != nil {
			r.log.Warn("release", "job", c.JobID, "err", err)
		}
	default:
		r.log.Warn("ignoring an unknown command", "kind", c.Kind, "job", c.JobID)
	}
}

// newerRun reports whether a launch of attempt a may replace a held run of
// attempt held: only a later attempt may (0, unknown after an agent
// restart, is never taken for later or earlier).
func newerRun(a, held uint64) bool {
	return a != 0 && held != 0 && a > held
}

// fence stops the requeueable jobs once the server has not been reached
// for the DOWN timeout less a heartbeat: the server is about to mark the
// node DOWN and requeue them elsewhere, and the old copy must be gone
// before the new one starts. Jobs that will not be requeued keep running.
func (r *Runner) fence(ctx context.Context) {
	for {
		r.mu.Lock()
		tick := max(r.heartbeat/4, 20*time.Millisecond)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		r.mu.Lock()
		if r.fenced || r.lastOK.IsZero() || time.Since(r.lastOK) < r.down-r.heartbeat {
			r.mu.Unlock()
			continue
		}
		r.fenced = true
		cut := time.Since(r.lastOK).Round(time.Millisecond)
		var stop []uint64
		for id, j := range r.jobs {
			if j.ended == nil && j.requeue {
				j.fenced = true
				stop = append(stop, id)
			}
		}
		r.mu.Unlock()
		sort.Slice(stop, func(i, k int) bool { return stop[i] < stop[k] })
		r.log.Warn("self-fencing: the server has not been reached; stopping the jobs it will requeue", "cut_off", cut, "jobs", stop)
		for _, id := range stop {
			if err := r.ex.Cancel(id, fmt.Sprintf("self-fenced: %s could not reach the server for %s", r.cfg.Node.Name, cut)); err != nil {
				r.log.Warn("self-fence", "job", id, "err", err)
			}
		}
	}
}

// renewLeases extends the leases of the executor's jobs to sent, when the
// server was last reached. A restarted agent renews the leases of the jobs
// it adopted with its registration, not before: until the server has
// answered, the lease must keep counting from the last exchange the server
// saw.
func (r *Runner) renewLeases(sent time.Time) {
	if lr, ok := r.ex.(LeaseRenewer); ok && r.cfg.Lease {
		lr.RenewLeases(sent)
	}
}
