package exec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spawnClient is the agent's side of the spawner (spawner.go): it starts
// the spawner when none serves the node, sends it launches, cancels,
// releases and lease renewals, and follows the outcomes it reports. When
// the spawner dies, the next one (started at once while jobs are held)
// reports them from its journal.
type spawnClient struct {
	e   *Executor
	dir string

	mu      sync.Mutex
	conn    net.Conn
	w       *bufio.Writer
	seq     uint64
	waits   map[uint64]chan spawnMsg
	jobs    map[uint64]*spawnedJob
	listed  bool
	closing bool
	// released are the jobs released lately: a list or an end event
	// answered before a release, read after it, must not bring one back
	// (Known would report it for ever).
	released map[uint64]time.Time
}

// spawnedJob is the agent's view of one job of the spawner.
type spawnedJob struct {
	id    uint64
	pid   int
	done  chan struct{}
	o     *Outcome
	gpus  []int   // NVML indexes, set before the job is listed in jobs
	share float64 // of each GPU; 0: whole
}

func newSpawnClient(e *Executor) *spawnClient {
	return &spawnClient{e: e, dir: filepath.Join(e.cfg.StateDir, spawnerDirName), waits: map[uint64]chan spawnMsg{}, jobs: map[uint64]*spawnedJob{}}
}

// hasState reports whether a spawner may hold jobs of this node.
func (c *spawnClient) hasState() bool {
	_, err := os.Stat(filepath.Join(c.dir, spawnerJournal))
	return err == nil
}

// connect returns a live connection, starting a spawner when needed, and
// lists its jobs on a new connection.
func (c *spawnClient) connect(ctx context.Context) error {
	c.mu.Lock()
	if c.conn != nil {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := os.MkdirAll(c.dir, 0o711); err != nil {
		return fmt.Errorf("spawner directory: %w", err)
	}
	var conn net.Conn
	var err error
	started := false
	deadline := time.Now().Add(20 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		conn, err = net.Dial("unix", filepath.Join(c.dir, spawnerSock))
		if err == nil {
			break
		}
		if !started {
			if serr := c.start(); serr != nil {
				return serr
			}
			started = true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("connect to the spawner: %w", err)
		}
		time.Sleep(delay)
	}
	c.mu.Lock()
	if c.conn != nil { // another goroutine won
		c.mu.Unlock()
		conn.Close()
		return nil
	}
	c.conn, c.w = conn, bufio.NewWriter(conn)
	c.mu.Unlock()
	go c.read(conn)
	r, err := c.call(ctx, spawnMsg{Op: "list"})
	if err != nil {
		return err
	}
	c.mu.Lock()
	for _, js := range r.Jobs {
		j := c.jobs[js.ID]
		if _, gone := c.released[js.ID]; j == nil && gone {
			continue
		}
		if j == nil {
			j = &spawnedJob{id: js.ID, pid: js.PID, done: make(chan struct{}), gpus: js.GPUs, share: js.GPUShare}
			c.jobs[js.ID] = j
		}
		if js.O != nil {
			c.endLocked(j, js.O)
		}
	}
	c.listed = true
	c.mu.Unlock()
	return nil
}

// start runs a spawner (the shim binary in its spawner role) in a session
// of its own; a second one started by a race exits at once (flock).
func (c *spawnClient) start() error {
	logf, err := os.OpenFile(filepath.Join(c.dir, spawnerLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open spawner log: %w", err)
	}
	defer logf.Close()
	cfg, _ := json.Marshal(spawnConfig{CgroupParent: c.e.cfg.CgroupParent, KillGrace: c.e.cfg.KillGrace, CPUProfile: os.Getenv("HPC_SPAWNER_CPUPROFILE")})
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	stR, stW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("spawner status pipe: %w", err)
	}
	defer stR.Close()
	// The spawner outlives the daemon: it must not hold descriptors the
	// daemon inherited (see startShim).
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	p, err := os.StartProcess(c.e.cfg.ShimPath, []string{"hpc-shim", c.dir}, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{shimEnv + "=spawner", spawnerCfgEnv + "=" + string(cfg)},
		Files: []*os.File{devnull, logf, logf, stW},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	stW.Close()
	if err != nil {
		return fmt.Errorf("start spawner %s: %w", c.e.cfg.ShimPath, err)
	}
	go func() { _, _ = p.Wait() }()
	_ = stR.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(stR).ReadString('\n')
	if err != nil {
		return fmt.Errorf("start spawner: no word from it: %w", err)
	}
	if why, ok := strings.CutPrefix(strings.TrimSpace(line), "err "); ok {
		return fmt.Errorf("start spawner: %s", why)
	}
	return nil
}

// read takes replies and outcome events off one connection; when it ends
// (the spawner died), waiters fail and, while jobs are held, a new
// spawner is started to report them.
func (c *spawnClient) read(conn net.Conn) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var m spawnMsg
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		c.mu.Lock()
		if m.Op == "end" {
			j := c.jobs[m.ID]
			if _, gone := c.released[m.ID]; j == nil && !gone {
				j = &spawnedJob{id: m.ID, done: make(chan struct{})}
				c.jobs[m.ID] = j
			}
			if j != nil {
				c.endLocked(j, m.O)
			}
		} else if w := c.waits[m.Seq]; w != nil {
			delete(c.waits, m.Seq)
			w <- m
		}
		c.mu.Unlock()
	}
	conn.Close()
	c.mu.Lock()
	if c.conn == conn {
		c.conn, c.w = nil, nil
	}
	for seq, w := range c.waits {
		delete(c.waits, seq)
		w <- spawnMsg{Seq: seq, Err: errSpawnerGone.Error()}
	}
	held := false
	for _, j := range c.jobs {
		if j.o == nil {
			held = true
		}
	}
	closing := c.closing
	c.mu.Unlock()
	if held && !closing {
		c.e.log.Warn("the spawner died; starting another to report its jobs")
		for i := 0; i < 100; i++ {
			if err := c.connect(context.Background()); err == nil {
				return
			} else if i == 0 {
				c.e.log.Error("cannot reach a new spawner", "err", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (c *spawnClient) endLocked(j *spawnedJob, o *Outcome) {
	if j.o != nil || o == nil {
		return
	}
	j.o = o
	close(j.done)
}

// call sends one request and waits for its reply. A connection found dead
// when the request is written (the spawner died and its reader has not
// noticed yet) delivered nothing: the request goes once more to a new
// spawner instead of failing a launch for the host's hiccup.
func (c *spawnClient) call(ctx context.Context, m spawnMsg) (spawnMsg, error) {
	r, conn, err := c.callOnce(ctx, m)
	if conn == nil {
		return r, err
	}
	c.mu.Lock()
	if c.conn == conn {
		c.conn, c.w = nil, nil
	}
	c.mu.Unlock()
	conn.Close()
	if cerr := c.connect(ctx); cerr != nil {
		return spawnMsg{}, fmt.Errorf("%w (and reconnecting: %v)", err, cerr)
	}
	r, _, err = c.callOnce(ctx, m)
	return r, err
}

// callOnce is call on the current connection; it returns that connection
// when writing to it failed.
func (c *spawnClient) callOnce(ctx context.Context, m spawnMsg) (spawnMsg, net.Conn, error) {
	ch := make(chan spawnMsg, 1)
	c.mu.Lock()
	if c.conn == nil {
		c.mu.Unlock()
		return spawnMsg{}, nil, fmt.Errorf("not connected: %w", errSpawnerGone)
	}
	conn := c.conn
	c.seq++
	m.Seq = c.seq
	c.waits[m.Seq] = ch
	b, err := json.Marshal(m)
	if err == nil {
		c.w.Write(append(b, '\n'))
		err = c.w.Flush()
	}
	if err != nil {
		delete(c.waits, m.Seq)
		c.mu.Unlock()
		return spawnMsg{}, conn, fmt.Errorf("send to the spawner: %v: %w", err, errSpawnerGone)
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		if r.Err == errSpawnerGone.Error() {
			return r, nil, errSpawnerGone
		}
		if r.Err != "" {
			return r, nil, errors.New(r.Err)
		}
		return r, nil, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waits, m.Seq)
		c.mu.Unlock()
		return spawnMsg{}, nil, ctx.Err()
	}
}

// launch starts a job through the spawner.
func (c *spawnClient) launch(ctx context.Context, rec record) (*Handle, error) {
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	j := &spawnedJob{id: rec.Spec.JobID, done: make(chan struct{}), gpus: gpuIndexes(rec.Spec), share: rec.Spec.GPUShare}
	c.mu.Lock()
	if old := c.jobs[j.id]; old != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("job %d: %w", j.id, ErrJobExists)
	}
	c.jobs[j.id] = j
	delete(c.released, j.id)
	c.mu.Unlock()
	msg := spawnMsg{Op: "launch", Rec: &rec}
	r, err := c.call(context.WithoutCancel(ctx), msg)
	if errors.Is(err, errSpawnerGone) {
		r, err = c.launchAgain(context.WithoutCancel(ctx), j, msg)
	}
	if err != nil {
		c.mu.Lock()
		if c.jobs[j.id] == j && j.o == nil {
			delete(c.jobs, j.id)
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("job %d: spawner: %w", j.id, err)
	}
	c.mu.Lock()
	j.pid = r.PID
	c.mu.Unlock()
	return &Handle{e: c.e, jobID: j.id, sj: j, jobPID: r.PID}, nil
}

// launchAgain follows a launch whose spawner died before it answered:
// the job may have started, and a launch error must mean that nothing of
// it runs. The next spawner (its recovery kills what the dead one left
// before it listens) says whether it holds the job: then the launch
// stands, its outcome the host's failure; else nothing ran and the launch
// goes to it.
func (c *spawnClient) launchAgain(ctx context.Context, j *spawnedJob, m spawnMsg) (spawnMsg, error) {
	err := errSpawnerGone
	for attempt := 0; attempt < spawnerTries && errors.Is(err, errSpawnerGone); attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		}
		if err = c.connect(ctx); err != nil {
			return spawnMsg{}, fmt.Errorf("%w; and no spawner since: %w", errSpawnerGone, err)
		}
		var l spawnMsg
		if l, err = c.call(ctx, spawnMsg{Op: "list"}); err != nil {
			continue
		}
		for _, js := range l.Jobs {
			if js.ID == j.id {
				c.mu.Lock()
				if js.O != nil {
					c.endLocked(j, js.O)
				}
				c.mu.Unlock()
				return spawnMsg{PID: js.PID}, nil
			}
		}
		var r spawnMsg
		if r, err = c.call(ctx, m); err == nil {
			return r, nil
		}
	}
	return spawnMsg{}, err
}

// job returns the spawner's job id, asking a spawner only when one may
// hold jobs.
func (c *spawnClient) job(id uint64) *spawnedJob {
	c.mu.Lock()
	j, listed := c.jobs[id], c.listed
	c.mu.Unlock()
	if j != nil || (listed && c.connected()) || !c.hasState() {
		return j
	}
	if err := c.connect(context.Background()); err != nil {
		c.e.log.Warn("cannot reach the spawner", "err", err)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jobs[id]
}

func (c *spawnClient) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// known lists the spawner's jobs.
func (c *spawnClient) known() []uint64 {
	if !c.connected() && c.hasState() {
		if err := c.connect(context.Background()); err != nil {
			c.e.log.Warn("cannot reach the spawner", "err", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.jobs))
	for id := range c.jobs {
		ids = append(ids, id)
	}
	return ids
}

// errSpawnerGone is the answer to a request whose spawner died before it
// replied: the request may or may not have been carried out.
var errSpawnerGone = errors.New("the spawner went away")

// callAgain sends an idempotent request (cancel, release), again to the
// next spawner when the one that had it died before answering: a kill -9
// of the spawner must not leave a job unreleased (held for ever, its slot
// with it) or a cancel unanswered.
func (c *spawnClient) callAgain(m spawnMsg) (spawnMsg, error) {
	var r spawnMsg
	var err error
	for attempt := 0; attempt < spawnerTries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		}
		if err = c.connect(context.Background()); err != nil {
			return r, err
		}
		if r, err = c.call(context.Background(), m); !errors.Is(err, errSpawnerGone) {
			return r, err
		}
	}
	return r, err
}

// spawnerTries is how many spawners in a row may die under one request
// before it fails.
const spawnerTries = 5

func (c *spawnClient) cancel(id uint64, reason string) error {
	_, err := c.callAgain(spawnMsg{Op: "cancel", ID: id, Reason: reason})
	return err
}

func (c *spawnClient) release(id uint64) error {
	if _, err := c.callAgain(spawnMsg{Op: "release", ID: id}); err != nil {
		return fmt.Errorf("release job %d: %w", id, err)
	}
	c.mu.Lock()
	delete(c.jobs, id)
	now := time.Now()
	if c.released == nil {
		c.released = map[uint64]time.Time{}
	}
	for old, at := range c.released {
		if now.Sub(at) > time.Minute {
			delete(c.released, old)
		}
	}
	c.released[id] = now
	c.mu.Unlock()
	return nil
}

// renew extends a job's lease to at; no reply is awaited.
func (c *spawnClient) renew(id uint64, at time.Time) error {
	b, err := json.Marshal(spawnMsg{Op: "lease", ID: id, At: at})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return errors.New("not connected to the spawner")
	}
	c.w.Write(append(b, '\n'))
	return c.w.Flush()
}

// close tells the spawner the agent stops (it removes its free slots and
// exits once no job runs) and disconnects.
func (c *spawnClient) close() {
	c.mu.Lock()
	c.closing = true
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.call(ctx, spawnMsg{Op: "bye"})
	conn.Close()
}
