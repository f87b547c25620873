package exec

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The spawner is the fast launch path (Config.Spawner): one long-lived
// supervisor per node instead of a shim process per job. hpcd starts it once
// (a re-execution of the shim binary, in a session of its own, so it
// outlives hpcd) and talks to it over a unix socket. It forks every job
// itself, from a thread that has first moved into the job's cgroup (v1
// lets one thread move alone), so the job's first instruction runs inside
// it, with no Go re-execution per job. It reaps the jobs as their parent
// and child subreaper, enforces walltime and leases, and records every
// outcome in one journal before it reports it: several outcomes share one
// fdatasync. Cgroups come from a pool of slots that are reset between jobs
// instead of made and removed in every controller per job.
//
// Spawner directory (<StateDir>/spawner/):
//
//	lock     flock held by the live spawner: one per node
//	sock     the unix socket hpcd connects to
//	pid      the spawner's pid and start time
//	journal  JSON lines: L (launched), C (cancel asked), E (outcome, made
//	         durable before it is reported), R (released)
//	scripts/ the scripts of script jobs, <id>.sh, owned by the job's user
//	log      the spawner's own log
const (
	spawnerDirName = "spawner"
	spawnerSock    = "sock"
	spawnerLock    = "lock"
	spawnerPID     = "pid"
	spawnerJournal = "journal"
	spawnerScripts = "scripts"
	spawnerLog     = "log"
)

// spawnConfig is what the spawner needs from the executor, passed in its
// environment.
type spawnConfig struct {
	CgroupParent string        `json:"cgroup_parent"`
	KillGrace    time.Duration `json:"kill_grace"`
	// CPUProfile, when set (HPC_SPAWNER_CPUPROFILE in hpcd's environment),
	// is where the spawner writes its CPU profile when it exits.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

const spawnerCfgEnv = "HPC_SPAWNER_CONFIG"

// sjob is one job the spawner holds, from launch to release.
type sjob struct {
	id       uint64
	spec     Spec
	slot     *slot
	pid      int
	start    time.Time
	oomBase  uint64
	script   string
	cancel   *cancelRequest
	timedOut bool
	fenced   time.Duration
	lease    time.Time // last renewal of the job's lease (FenceAfter)
	timers   []*time.Timer
	outcome  *Outcome      // once durable
	pendingO *Outcome      // classified, not yet durable
	ended    chan struct{} // closed once the outcome is durable
	reaped   bool
}

type spawner struct {
	dir  string
	cfg  spawnConfig
	log  *slog.Logger
	pool *slotPool

	mu      sync.Mutex
	jobs    map[uint64]*sjob
	byPID   map[int]*sjob
	clients map[*spawnClientConn]bool
	journal *os.File
	jsize   int64
	jlines  int
	outq    chan *sjob
	idle    chan struct{}
	// inflight counts outcomes classified and not yet durable.
	inflight int

	stopProfile func() // ends the CPU profile (spawnConfig.CPUProfile)

	// oomProtected: the spawner's OOM score is -1000, which its jobs
	// must not inherit (launch forks them with 0).
	oomProtected bool
}

// In the spawner the main goroutine keeps the main thread (LockOSThread
// in an init runs main on it, locked): the launching goroutines lock a
// thread each and leave it in a job's cgroup to end with them, and Go does
// not end the main thread but parks it where it is.
func init() {
	if os.Getenv(shimEnv) == "spawner" {
		runtime.LockOSThread()
	}
}

// runSpawner is the spawner process: stdout/stderr are its log, fd 3
// takes one line for the agent that started it: "ok" once it listens,
// "busy" when another spawner serves the node, or "err <why>".
func runSpawner(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("spawner", os.Getpid())
	status := os.NewFile(3, "status")
	fail := func(what string, err error) int {
		log.Error(what, "err", err)
		fmt.Fprintf(status, "err %s: %v\n", what, err)
		status.Close()
		return 2
	}
	var cfg spawnConfig
	if err := json.Unmarshal([]byte(os.Getenv(spawnerCfgEnv)), &cfg); err != nil {
		return fail("bad configuration", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, spawnerLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail("open lock", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Fprintln(status, "busy") // another spawner serves this node
		status.Close()
		return 0
	}
	// The OOM killer must pick jobs, never their supervisor. Children
	// inherit the score and, with it, the right to set it again as low
	// (oom_score_adj_min): launch forks with 0 (see there).
	oomProtected := os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0) == nil
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warn("cannot become child subreaper", "err", err)
	}
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	sp := &spawner{dir: dir, cfg: cfg, log: log, jobs: map[uint64]*sjob{}, byPID: map[int]*sjob{},
		clients: map[*spawnClientConn]bool{}, outq: make(chan *sjob, 4096), idle: make(chan struct{}, 1)}
	sp.pool = newSlotPool(cfg.CgroupParent)
	sp.oomProtected = oomProtected
	if err := sp.recover(); err != nil {
		return fail("recover the journal", err)
	}
	if id, err := identify(os.Getpid()); err == nil {
		_ = writeVolatileJSON(filepath.Join(dir, spawnerPID), id)
	}
	sock := filepath.Join(dir, spawnerSock)
	_ = os.Remove(sock)
	ln, err := listenPrivate(sock)
	if err != nil {
		return fail("listen", err)
	}
	ln.SetUnlinkOnClose(false)
	sigc := make(chan os.Signal, 64)
	signal.Notify(sigc, syscall.SIGCHLD)
	go sp.reaper(sigc)
	go sp.writer()
	go sp.fence()
	if cfg.CPUProfile != "" {
		if f, err := os.Create(cfg.CPUProfile); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
				sp.stopProfile = sync.OnceFunc(pprof.StopCPUProfile)
			}
		}
	}
	fmt.Fprintln(status, "ok")
	status.Close()
	// An agent that started us and died before connecting leaves us idle.
	time.AfterFunc(5*time.Second, sp.pokeIdle)
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			go sp.serve(c)
		}
	}()
	// Exit once no agent is connected and no job runs: outcomes not yet
	// released wait in the journal for the next spawner.
	for range sp.idle {
		time.Sleep(100 * time.Millisecond)
		sp.mu.Lock()
		done := len(sp.clients) == 0 && sp.runningLocked() == 0 && sp.inflight == 0
		if done {
			ln.Close()
			_ = os.Remove(sock)
			sp.pool.removeFree()
		}
		sp.mu.Unlock()
		if done {
			log.Info("idle: exiting")
			return 0
		}
	}
	return 0
}

func (sp *spawner) runningLocked() int {
	n := 0
	for _, j := range sp.jobs {
		if j.outcome == nil {
			n++
		}
	}
	return n
}

func (sp *spawner) pokeIdle() {
	select {
	case sp.idle <- struct{}{}:
	default:
	}
}

// launch starts a job and returns its pid (0 when it could not run its
// command: it then ends FAILED at once, its outcome reported as usual).
// An error means nothing of the job runs and nothing of it is kept.
func (sp *spawner) launch(rec *record) (int, error) {
	s := rec.Spec
	sp.mu.Lock()
	if sp.jobs[s.JobID] != nil {
		sp.mu.Unlock()
		return 0, fmt.Errorf("job %d: %w", s.JobID, ErrJobExists)
	}
	sl, err := sp.pool.get(Limits(s))
	if err != nil {
		sp.mu.Unlock()
		return 0, fmt.Errorf("job %d: %w", s.JobID, err)
	}
	j := &sjob{id: s.JobID, spec: s, slot: sl, start: time.Now(), ended: make(chan struct{})}
	j.oomBase = sl.resetCounters()
	if err := sp.appendLocked(journalEntry{Op: "L", ID: j.id, Slot: sl.n, Start: j.start}); err != nil {
		sp.pool.put(sl)
		sp.mu.Unlock()
		return 0, fmt.Errorf("job %d: %w", s.JobID, err)
	}
	sp.jobs[j.id] = j
	argv := s.Argv
	if s.Script != "" {
		j.script = filepath.Join(sp.dir, spawnerScripts, strconv.FormatUint(j.id, 10)+".sh")
		if err := writeScript(j.script, s); err != nil {
			sp.dropLocked(j)
			sp.mu.Unlock()
			return 0, fmt.Errorf("job %d: %w", s.JobID, err)
		}
		argv = scriptArgv(s.Script, j.script)
	}
	// Held under the lock: the reaper must find the pid once the job exits.
	// The job must not inherit the spawner's -1000: unkillable at its
	// memory limit it would loop in the page fault for ever, and it could
	// outlive every other process in a global OOM. Go has no hook between
	// fork and exec, so the spawner drops its own score (and, being root,
	// the floor a child may set itself back to) around the fork: launches
	// are one at a time under sp.mu, and nothing else forks.
	if sp.oomProtected {
		if err := writeCg("/proc/self/oom_score_adj", "0"); err != nil {
			sp.log.Warn("cannot drop the spawner's OOM score for a launch", "err", err)
		}
	}
	pid, startErr, err := startInSlot(s, argv, sl)
	if sp.oomProtected {
		_ = writeCg("/proc/self/oom_score_adj", "-1000")
	}
	if err != nil {
		sp.dropLocked(j)
		sp.mu.Unlock()
		return 0, fmt.Errorf("job %d: %w", s.JobID, err)
	}
	if startErr != nil {
		sp.mu.Unlock()
		sp.finish(j, unix.WaitStatus(startErr.code<<8), unix.Rusage{}, startErr.msg)
		return 0, nil
	}
	j.pid = pid
	sp.byPID[pid] = j
	sp.armTimers(j)
	sp.mu.Unlock()
	return pid, nil
}

// dropLocked forgets a job that never started.
func (sp *spawner) dropLocked(j *sjob) {
	delete(sp.jobs, j.id)
	_ = sp.appendLocked(journalEntry{Op: "R", ID: j.id})
	if j.script != "" {
		_ = os.Remove(j.script)
	}
	sp.pool.put(j.slot)
}

func writeScript(path string, s Spec) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	if err := writeFileAtomic(path, []byte(s.Script), 0o400, false); err != nil {
		return err
	}
	if err := os.Chown(path, int(s.UID), int(s.GID)); err != nil && os.Geteuid() == 0 {
		return fmt.Errorf("chown script: %w", err)
	}
	return nil
}
