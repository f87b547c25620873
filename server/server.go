// Package server is the central daemon's state: the job queue and its
// state machine, the node registry, the scheduling loop that feeds the
// placer, and the /v1 HTTP API. Every state change is committed to the
// store before it is installed in memory and acknowledged (commit.go).
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/store"
)

// Agent is how the server drives one node. The in-process agent of
// `hpcd dev` implements it directly; outcomes come back through
// Server.Report.
type Agent interface {
	// Launch starts the job's part on the node; it returns once the job
	// runs (or failed to start).
	Launch(ctx context.Context, a api.Assignment) error
	// Cancel kills the job's processes; the outcome is reported later.
	Cancel(jobID uint64, reason string) error
	// Release lets the agent forget a job whose outcome is now durable.
	Release(jobID uint64) error
}

// Config is the server's settings.
type Config struct {
	Policy          placement.Policy // the zero Policy is FCFS (Depth 0); hpcd dev defaults to EASY
	DefaultWalltime time.Duration    // applied when a job file gives none; 0 = walltime required
	AllowRoot       bool             // accept jobs that run as uid 0
	AdminUIDs       []uint32         // besides root, who may drain nodes and touch any job
	// AdminTokensViaAgent lets agents obtain HTTPS tokens for admins
	// (uid 0 and AdminUIDs); off, an admin logs in on the server host.
	AdminTokensViaAgent bool
	Tick                time.Duration // scheduling pass even without events (age, reservations)
	// DownTimeout: a node whose agent has not synced for this long is
	// DOWN (default 30 s); Heartbeat is how often agents sync (default a
	// sixth of DownTimeout).
	DownTimeout time.Duration
	Heartbeat   time.Duration
	// ArchiveRetention is how long ended jobs stay in the accounting
	// archive; 0 keeps them forever.
	ArchiveRetention time.Duration
	FairShare        FairShare
	// CheckpointRoot holds one checkpoint directory per job, kept across its
	// restarts: shared storage that every node mounts at the same path.
	// Empty: <workdir>/.hpc-checkpoint/<id>, beside the job's own files.
	CheckpointRoot string
	// CancelGrace is how long a cancelled job has between SIGTERM and
	// SIGKILL (Slurm's KillWait); 0 kills at once.
	CancelGrace time.Duration
	// DrainAfterHostFailures drains a node after this many host failures
	// in a row (hostfail.go); 0 = DefaultDrainAfterHostFailures, <0 never.
	DrainAfterHostFailures int
	// Limits protect the daemon from one user (limits.go).
	Limits Limits
	// Accounts associates user names with the accounts they may charge
	// (policy.go); empty: each user charges their own groups.
	Accounts map[string][]string
	// Pprof serves the Go runtime's profiles to admins on the Unix socket
	// (pprof.go; `hpcd --pprof`).
	Pprof bool
}

// Server owns the jobs and nodes of one cluster.
type Server struct {
	cfg   Config
	store *store.Store
	log   *slog.Logger

	placer keptPlacer // the placement state kept between passes (placer.go)

	mu      sync.Mutex
	jobs    map[uint64]*job
	nodes   map[string]*node
	agents  map[string]Agent
	changed chan struct{} // closed and replaced on every job change (long-poll waiters)
	envs    envCache
	specs   specCache // jobSpecs shared among jobs (jobspec.go)

	// writing holds the write slot of each job being changed (commit.go).
	writing map[uint64]chan struct{}
	// endedDeps caches ended jobs that dependencies name (deps.go).
	endedDeps map[uint64]depTarget
	// nodeWrites serialises node changes (commit.go).
	nodeWrites sync.Mutex
	// releasing: the agent still holds a job's previous run; a requeued
	// job must not start again on the node until it is released.
	releasing map[uint64]bool
	// launching: committed RUNNING, its launch not yet handed to the
	// node's agent (a registration meanwhile must not take it for lost).
	launching map[uint64]bool
	// registerInstalled, when set (tests), runs in AgentRegister between
	// the new session's install and the reconcile of the node's jobs.
	registerInstalled func(node string)
	// hostFailures counts each node's host failures in a row; unstored
	// holds outcomes whose commit failed, to report again (hostfail.go).
	hostFailures map[string]int
	unstored     map[string]api.Outcome
	// queuedBy counts each user's PENDING and HELD jobs (limits.go).
	queuedBy map[uint32]int
	conns    connCounter

	kick     chan struct{}
	launches sync.WaitGroup // launches in flight, joined at shutdown
	started  time.Time      // nodes get a DownTimeout from here to re-register
	pki      *clusterPKI    // nil unless `hpcd server` serves agents over TLS

	shares    shareTable    // fair-share usage per account (fairshare.go)
	lastPurge time.Time     // archive retention's last run (archive.go)
	feasible  *feasibleMemo // placement.Feasible per job shape (feasible.go)
	// nodeViews are the nodes as the placer sees them (nodeview.go).
	nodeViews map[string]nodeView
	// stateCounts counts the live jobs per user and state (statecounts.go).
	stateCounts map[stateKey]int
}

// New loads every stored job and node. Jobs that were RUNNING stay so
// until their node's agent reconciles (AttachAgent).
func New(cfg Config, st *store.Store, log *slog.Logger) (*Server, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.DownTimeout <= 0 {
		cfg.DownTimeout = 30 * time.Second
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat > cfg.DownTimeout/3 {
		cfg.Heartbeat = cfg.DownTimeout / 6
	}
	s := &Server{
		cfg:       cfg,
		store:     st,
		log:       log,
		jobs:      map[uint64]*job{},
		nodes:     map[string]*node{},
		agents:    map[string]Agent{},
		changed:   make(chan struct{}),
		kick:      make(chan struct{}, 1),
		writing:   map[uint64]chan struct{}{},
		releasing: map[uint64]bool{},
		launching: map[uint64]bool{},
		started:   time.Now(),
		shares:    newShareTable(cfg.FairShare),
		feasible:  newFeasibleMemo(),

		hostFailures: map[string]int{},
		unstored:     map[string]api.Outcome{},
		queuedBy:     map[uint32]int{},
	}
	s.cfg.Limits = cfg.Limits.withDefaults()
	if err := s.shares.load(st); err != nil {
		return nil, fmt.Errorf("load fair-share usage: %w", err)
	}
	envs := map[string]map[string]string{}
	var lost []uint64
	err := st.Blobs(func(key string, data []byte) error {
		if k, ok := strings.CutPrefix(key, envBlobPrefix); ok {
			env := map[string]string{}
			if err := json.Unmarshal(data, &env); err != nil {
				return fmt.Errorf("environment %s: %w", k, err)
			}
			envs[k] = env
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load environments: %w", err)
	}
	err = st.Jobs(func(id uint64, data []byte) error {
		j := &job{}
		if err := json.Unmarshal(data, j); err != nil {
			return fmt.Errorf("job %d: %w", id, err)
		}
		if j.EnvKey != "" {
			env, ok := envs[j.EnvKey]
			if !ok {
				// One damaged record must not keep every other job from
				// loading: this one can't run as submitted, so it ends.
				log.Error("job's environment is missing from the store", "job", id, "env_key", j.EnvKey)
				lost = append(lost, id)
			} else {
				j.Env, _ = s.envs.intern(env)
				s.envs.markStored(j.EnvKey)
			}
		}
		j.jobSpec = s.specs.intern(j.jobSpec) // after Env: jobs alike share one (jobspec.go)
		s.jobs[id] = j
		s.countLocked(nil, j)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load jobs: %w", err)
	}
	err = st.Nodes(func(name string, data []byte) error {
		n := &node{}
		if err := json.Unmarshal(data, n); err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		s.nodes[name] = n // no agent until one attaches
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	_, err = s.updateJobs(lost, func(j *job) error {
		if api.Terminal(j.State) {
			return skipJob
		}
		j.to(api.StateFailed, "its environment was lost from the server's store; submit it again", time.Now())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("end jobs with a lost environment: %w", err)
	}
	counts := map[api.JobState]int{}
	for _, j := range s.jobs {
		counts[j.State]++
	}
	log.Info("state loaded", "jobs", len(s.jobs), "by_state", counts, "nodes", len(s.nodes))
	return s, nil
}

// Kick asks for a scheduling pass soon; many kicks coalesce into one.
func (s *Server) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// notifyLocked wakes long-poll waiters; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run schedules until ctx ends, then waits for the launches it started.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	defer s.launches.Wait()
	hb := time.NewTicker(min(s.cfg.DownTimeout/10, time.Second))
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		case now := <-hb.C:
			s.checkHeartbeats(now)
			continue
		}
		s.retryUnstored()
		now := time.Now()
		s.scheduleOnce(ctx, now)
		s.archiveEnded(now)
		s.checkpointPass(now)
		// A pass over a long queue takes real CPU, and a stream of
		// submits or outcomes kicks the next one at once: rest as long as
		// the pass took, so they get at least half the CPU. An idle
		// cluster's pass takes microseconds and waits for nothing.
		if d := time.Since(now); d > time.Millisecond {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}
}

func (s *Server) isAdmin(uid uint32) bool {
	if uid == 0 {
		return true
	}
	for _, a := range s.cfg.AdminUIDs {
		if a == uid {
			return true
		}
	}
	return false
}
