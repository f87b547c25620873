package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// journalEntry is one line of the journal.
type journalEntry struct {
	Op     string    `json:"op"` // L, C, E, R
	ID     uint64    `json:"id"`
	Slot   int       `json:"slot,omitempty"`
	Start  time.Time `json:"start,omitempty"`
	Reason string    `json:"reason,omitempty"`
	O      *Outcome  `json:"o,omitempty"`
}

// spawnMsg is a request from hpcd or a reply/event from the spawner.
type spawnMsg struct {
	Op     string          `json:"op,omitempty"` // launch, list, cancel, release, lease, bye; end (event)
	Seq    uint64          `json:"seq,omitempty"`
	ID     uint64          `json:"id,omitempty"`
	Rec    *record         `json:"rec,omitempty"`
	Reason string          `json:"reason,omitempty"`
	At     time.Time       `json:"at,omitempty"`
	PID    int             `json:"pid,omitempty"`
	Err    string          `json:"err,omitempty"`
	O      *Outcome        `json:"o,omitempty"`
	Jobs   []spawnJobState `json:"jobs,omitempty"`
}

// spawnJobState is a job as the spawner lists it.
type spawnJobState struct {
	ID  uint64   `json:"id"`
	PID int      `json:"pid"`
	O   *Outcome `json:"o,omitempty"`
	// GPUs and GPUShare are the spec's, for an agent that adopts the job
	// and goes on measuring its GPU usage (Handle.GPUs).
	GPUs     []int   `json:"gpus,omitempty"`
	GPUShare float64 `json:"gpu_share,omitempty"`
}

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

type spawnClientConn struct {
	c  net.Conn
	mu sync.Mutex
	w  *bufio.Writer
}

func (c *spawnClientConn) send(m spawnMsg) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w.Write(append(b, '\n'))
	c.w.Flush()
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

// recover replays the journal: jobs launched by a spawner that died
// without their outcome were killed with it (their cgroup is emptied now)
// and end as host failures; outcomes not yet released are kept. The
// journal is then rewritten with only the jobs still held.
func (sp *spawner) recover() error {
	path := filepath.Join(sp.dir, spawnerJournal)
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Slots are claimed once the whole journal is read: a released job's
	// slot is free again (claimed on its L line, it would never be reused
	// nor removed).
	slots := map[uint64]int{}
	if f != nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e journalEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue // a torn last line
			}
			switch e.Op {
			case "L":
				sp.jobs[e.ID] = &sjob{id: e.ID, start: e.Start, ended: make(chan struct{}), reaped: true}
				slots[e.ID] = e.Slot
			case "C":
				if j := sp.jobs[e.ID]; j != nil {
					j.cancel = &cancelRequest{Reason: e.Reason}
				}
			case "E":
				if j := sp.jobs[e.ID]; j != nil && e.O != nil {
					j.outcome = e.O
					close(j.ended)
				}
			case "R":
				delete(sp.jobs, e.ID)
			}
		}
		f.Close()
	}
	for _, j := range sp.jobs {
		j.slot = sp.pool.claim(slots[j.id])
		j.script = filepath.Join(sp.dir, spawnerScripts, strconv.FormatUint(j.id, 10)+".sh")
		if j.outcome != nil {
			continue
		}
		if j.slot != nil {
			if err := j.slot.killAll(); err != nil {
				sp.log.Warn("kill remains of job", "job", j.id, "err", err)
			}
		}
		o := Outcome{State: StateFailed, ExitCode: exitSetupFailed, Start: j.start, End: time.Now(), HostFailure: true,
			Reason: "the job's supervisor (spawner) died; the job was killed"}
		if j.cancel != nil {
			o.HostFailure = false
			o.State, o.Reason = StateCancelled, "cancelled"
			if j.cancel.Reason != "" {
				o.Reason += ": " + j.cancel.Reason
			}
		}
		j.outcome = &o
		close(j.ended)
	}
	sp.pool.adoptLeftovers()
	return sp.compact()
}

// compact rewrites the journal with the jobs still held, durably.
func (sp *spawner) compact() error {
	path := filepath.Join(sp.dir, spawnerJournal)
	var b []byte
	n := 0
	for _, j := range sp.jobs {
		e := journalEntry{Op: "L", ID: j.id, Start: j.start}
		if j.slot != nil {
			e.Slot = j.slot.n
		}
		line, _ := json.Marshal(e)
		b = append(append(b, line...), '\n')
		n++
		if j.cancel != nil {
			line, _ = json.Marshal(journalEntry{Op: "C", ID: j.id, Reason: j.cancel.Reason})
			b = append(append(b, line...), '\n')
			n++
		}
		if j.outcome != nil {
			line, _ = json.Marshal(journalEntry{Op: "E", ID: j.id, O: j.outcome})
			b = append(append(b, line...), '\n')
			n++
		}
	}
	if err := writeFileAtomic(path, b, 0o600, true); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if sp.journal != nil {
		sp.journal.Close()
	}
	sp.journal, sp.jsize, sp.jlines = f, int64(len(b)), n
	return nil
}

// appendLocked writes entries to the journal in one write; a failed write
// is cut back off so that no torn line stays between good ones.
func (sp *spawner) appendLocked(es ...journalEntry) error {
	var b []byte
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	if _, err := sp.journal.Write(b); err != nil {
		_ = sp.journal.Truncate(sp.jsize)
		return fmt.Errorf("write journal: %w", err)
	}
	sp.jsize += int64(len(b))
	sp.jlines += len(es)
	return nil
}

func (sp *spawner) serve(c *net.UnixConn) {
	if err := peerAllowed(c); err != nil {
		sp.log.Warn("refused a connection", "err", err)
		c.Close()
		return
	}
	cl := &spawnClientConn{c: c, w: bufio.NewWriter(c)}
	sp.mu.Lock()
	sp.clients[cl] = true
	sp.mu.Unlock()
	defer func() {
		sp.mu.Lock()
		delete(sp.clients, cl)
		sp.mu.Unlock()
		c.Close()
		sp.pokeIdle()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m spawnMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			sp.log.Warn("bad request", "err", err)
			return
		}
		switch m.Op {
		case "launch":
			r := spawnMsg{Seq: m.Seq}
			if m.Rec == nil {
				r.Err = "launch without a record"
			} else if pid, err := sp.launch(m.Rec); err != nil {
				r.Err = err.Error()
			} else {
				r.PID = pid
			}
			cl.send(r)
		case "list":
			cl.send(spawnMsg{Seq: m.Seq, Jobs: sp.list()})
		case "lease": // no reply: renewals are frequent and need none
			sp.mu.Lock()
			if j := sp.jobs[m.ID]; j != nil && m.At.After(j.lease) {
				j.lease = m.At
			}
			sp.mu.Unlock()
		case "cancel":
			go func() {
				r := spawnMsg{Seq: m.Seq}
				if err := sp.cancelJob(m.ID, m.Reason); err != nil {
					r.Err = err.Error()
				}
				cl.send(r)
			}()
		case "release":
			go func() {
				r := spawnMsg{Seq: m.Seq}
				if err := sp.release(m.ID); err != nil {
					r.Err = err.Error()
				}
				cl.send(r)
			}()
		case "bye":
			// The agent stops: free slots go now (the parent cgroup may
			// then be removed), the spawner itself once idle.
			sp.mu.Lock()
			sp.pool.removeFree()
			sp.mu.Unlock()
			if sp.stopProfile != nil {
				sp.stopProfile()
			}
			cl.send(spawnMsg{Seq: m.Seq})
		default:
			cl.send(spawnMsg{Seq: m.Seq, Err: "unknown op " + m.Op})
		}
	}
}

func (sp *spawner) list() []spawnJobState {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]spawnJobState, 0, len(sp.jobs))
	for _, j := range sp.jobs {
		out = append(out, spawnJobState{ID: j.id, PID: j.pid, O: j.outcome, GPUs: gpuIndexes(j.spec), GPUShare: j.spec.GPUShare})
	}
	return out
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

// writer makes outcomes durable, many per fdatasync, then reports them.
// While the journal cannot be written (a full disk) it keeps them and
// retries: a job's own result never turns into a host failure.
func (sp *spawner) writer() {
	for j := range sp.outq {
		batch := []*sjob{j}
		for more := true; more && len(batch) < 512; {
			select {
			case k := <-sp.outq:
				batch = append(batch, k)
			default:
				more = false
			}
		}
		es := make([]journalEntry, len(batch))
		for i, k := range batch {
			es[i] = journalEntry{Op: "E", ID: k.id, O: k.pendingO}
		}
		var f *os.File
		delay := 50 * time.Millisecond
		for attempt := 1; ; attempt++ {
			sp.mu.Lock()
			err := sp.appendLocked(es...)
			f = sp.journal
			sp.mu.Unlock()
			if err == nil {
				break
			}
			if attempt == 1 || attempt%50 == 0 {
				sp.log.Error("cannot write outcomes; keeping them and retrying", "err", err, "attempt", attempt)
			}
			time.Sleep(delay)
			delay = min(delay*2, 2*time.Second)
		}
		// Written, reported, then made durable: a connected agent passes
		// the outcome on to the server, which commits it before anyone
		// sees it, so the fdatasync need not delay it; it only keeps the
		// outcome for an agent that is not there (the spawner reports
		// nothing new before it is done, and does not exit before it).
		sp.mu.Lock()
		var events []spawnMsg
		for _, k := range batch {
			k.outcome = k.pendingO
			close(k.ended)
			events = append(events, spawnMsg{Op: "end", ID: k.id, O: k.outcome})
		}
		clients := make([]*spawnClientConn, 0, len(sp.clients))
		for c := range sp.clients {
			clients = append(clients, c)
		}
		sp.mu.Unlock()
		for _, c := range clients {
			for _, ev := range events {
				c.send(ev)
			}
		}
		for attempt := 1; ; attempt++ {
			err := unix.Fdatasync(int(f.Fd()))
			if err == nil || errors.Is(err, unix.EBADF) { // EBADF: compacted meanwhile, durably
				break
			}
			if attempt == 1 || attempt%50 == 0 {
				sp.log.Error("cannot sync outcomes; retrying", "err", err, "attempt", attempt)
			}
			time.Sleep(min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second))
		}
		sp.mu.Lock()
		sp.inflight -= len(batch)
		sp.mu.Unlock()
		sp.pokeIdle()
	}
}

// cancelJob records the cancel, then kills the job's whole cgroup.
func (sp *spawner) cancelJob(id uint64, reason string) error {
	sp.mu.Lock()
	j := sp.jobs[id]
	if j == nil {
		sp.mu.Unlock()
		return fmt.Errorf("cancel job %d: %w", id, ErrUnknownJob)
	}
	if j.reaped {
		sp.mu.Unlock()
		return nil // over: its outcome stands
	}
	j.cancel = &cancelRequest{Reason: reason, Time: time.Now()}
	err := sp.appendLocked(journalEntry{Op: "C", ID: id, Reason: reason})
	sp.mu.Unlock()
	if err != nil {
		sp.log.Warn("cannot journal a cancel", "job", id, "err", err)
	}
	return j.slot.killAll()
}

// release forgets a job: a running one is cancelled and waited for, what
// is left in its cgroup is killed, and the slot goes back to the pool.
func (sp *spawner) release(id uint64) error {
	sp.mu.Lock()
	j := sp.jobs[id]
	sp.mu.Unlock()
	if j == nil {
		return nil
	}
	select {
	case <-j.ended:
	default:
		_ = sp.cancelJob(id, "released by the agent while running")
		select {
		case <-j.ended:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("release job %d: still running after a cancel", id)
		}
	}
	if j.slot != nil && !j.slot.empty() {
		if err := j.slot.killAll(); err != nil {
			return fmt.Errorf("release job %d: %w", id, err)
		}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.jobs, id)
	if err := sp.appendLocked(journalEntry{Op: "R", ID: id}); err != nil {
		sp.log.Warn("cannot journal a release", "job", id, "err", err)
	}
	if j.script != "" {
		_ = os.Remove(j.script)
	}
	if j.slot != nil {
		sp.pool.put(j.slot)
	}
	if sp.jlines > 4096 && sp.jlines > 4*len(sp.jobs) {
		if err := sp.compact(); err != nil {
			sp.log.Warn("cannot compact the journal", "err", err)
		}
	}
	return nil
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
