package exec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Executor runs jobs on this node, each under its own shim.
type Executor struct {
	cfg     Config
	pids    int64 // a job's pids limit when its Spec sets none
	iso     Isolation
	v2mount string
	drv     driver
	log     *slog.Logger
	sp      *spawnClient // nil: every job gets a shim
}

// New checks the configuration, chooses the isolation mode (detected unless
// forced) and creates the state directory.
func New(cfg Config, log *slog.Logger) (*Executor, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.StateDir == "" {
		return nil, errors.New("exec: StateDir is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "hpc"
	}
	cfg.CgroupParent = strings.Trim(filepath.Clean("/"+cfg.CgroupParent), "/")
	if cfg.CgroupParent == "" {
		return nil, errors.New("exec: CgroupParent must not be the cgroup root")
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 10 * time.Second
	}
	if cfg.PidsShare == 0 {
		cfg.PidsShare = DefaultPidsShare
	}
	pids, err := pidsPerJob(cfg.PidsShare)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if cfg.ShimPath == "" {
		cfg.ShimPath = "/proc/self/exe"
	}
	iso := cfg.Isolation
	if iso == "" {
		iso = detectIsolation()
	}
	if iso != IsolationNone && os.Geteuid() != 0 {
		return nil, fmt.Errorf("exec: isolation %s needs root", iso)
	}
	e := &Executor{cfg: cfg, iso: iso, pids: pids, log: log.With("component", "exec")}
	if iso == IsolationV2 {
		e.v2mount = v2MountFor()
	}
	drv, err := newDriver(iso, cfg.CgroupParent, e.v2mount)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	e.drv = drv
	if cfg.Spawner && iso == IsolationV1 {
		e.sp = newSpawnClient(e)
	}
	// 0711: a job's user must reach its own script (job.sh) inside, but
	// nobody may list the jobs.
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("exec: create state dir: %w", err)
	}
	e.log.Info("executor ready", "pids_per_job", pids, "isolation", iso, "state_dir", cfg.StateDir, "cgroup_parent", cfg.CgroupParent)
	return e, nil
}

// Close removes the daemon's cgroup subtree when no job is left in it, so
// that daemons that come and go (tests) leave nothing behind. Running jobs
// keep theirs, to be adopted by the next daemon.
func (e *Executor) Close() {
	if e.sp != nil {
		e.sp.close()
	}
	e.drv.removeParent()
}

// Isolation reports the mechanism in force (for the node's inventory).
func (e *Executor) Isolation() Isolation { return e.iso }

func (e *Executor) jobDir(jobID uint64) string {
	return filepath.Join(e.cfg.StateDir, strconv.FormatUint(jobID, 10))
}

// Launch starts a job and returns once its process runs inside its cgroup.
// The state directory and launch record are written first, so an agent that
// crashes at any point can adopt the job or see that it never started.
// Errors are for invalid specs and for the node's own failures; a command
// that cannot be run (not found, output not writable) still launches and
// ends FAILED with the reason, as a shell would report it.
func (e *Executor) Launch(ctx context.Context, s Spec) (h *Handle, err error) {
	if err := validate(s, e.cfg.AllowRoot); err != nil {
		return nil, err
	}
	if s.Pids <= 0 {
		s.Pids = e.pids
	}
	if os.Geteuid() != 0 && (s.UID != uint32(os.Geteuid()) || s.GID != uint32(os.Getegid())) {
		return nil, fmt.Errorf("job %d: %w: the agent is not root and cannot run jobs as uid %d", s.JobID, ErrInvalidSpec, s.UID)
	}
	if err := prepareCheckpointDir(s); err != nil {
		return nil, err
	}
	dir := e.jobDir(s.JobID)
	if e.sp != nil && s.RestoreFrom == "" && s.CheckpointDir == "" {
		if _, err := os.Stat(dir); err == nil {
			return nil, fmt.Errorf("job %d: %w", s.JobID, ErrJobExists)
		}
		h, err := e.sp.launch(ctx, record{Spec: s, Isolation: e.iso, CgroupParent: e.cfg.CgroupParent, KillGrace: e.cfg.KillGrace, Created: time.Now()})
		if err != nil {
			return nil, err
		}
		e.log.Debug("job launched", "job", s.JobID, "pid", h.jobPID, "spawner", true)
		return h, nil
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("job %d: %w", s.JobID, ErrJobExists)
		}
		return nil, fmt.Errorf("job %d: create state dir: %w", s.JobID, err)
	}
	log := e.log.With("job", s.JobID)
	var grp jobGroup
	var shim *osexec.Cmd
	defer func() {
		if err == nil {
			return
		}
		// Nothing runs: leave no trace, the caller sees the error.
		if shim != nil && shim.Process != nil {
			_ = shim.Process.Kill()
			_ = shim.Wait()
		}
		if grp != nil {
			_ = grp.killAll(0)
			_ = grp.remove()
		}
		_ = os.RemoveAll(dir)
	}()
	if err := syncDir(e.cfg.StateDir); err != nil {
		return nil, err
	}
	if s.Script != "" {
		// Read by the job's user: owned by them, readable by nobody else.
		p := filepath.Join(dir, scriptFile)
		if err := writeFileAtomic(p, []byte(s.Script), 0o400, false); err != nil {
			return nil, err
		}
		if err := os.Chown(p, int(s.UID), int(s.GID)); err != nil && os.Geteuid() == 0 {
			return nil, fmt.Errorf("job %d: chown script: %w", s.JobID, err)
		}
	}
	rec := record{Spec: s, Isolation: e.iso, CgroupParent: e.cfg.CgroupParent, V2Mount: e.v2mount, KillGrace: e.cfg.KillGrace, Created: time.Now()}
	if s.RestoreFrom != "" {
		if e.cfg.CRIU == nil {
			return nil, fmt.Errorf("job %d: %w: restoring a CRIU checkpoint needs CRIU on this node", s.JobID, ErrInvalidSpec)
		}
		rec.CRIUPath = e.cfg.CRIU.Path
	}
	if err := writeVolatileJSON(filepath.Join(dir, recordFile), rec); err != nil {
		return nil, err
	}
	if s.FenceAfter > 0 {
		if err := createLease(dir); err != nil {
			return nil, fmt.Errorf("job %d: %w", s.JobID, err)
		}
	}
	if grp, err = e.drv.create(s.JobID, Limits(s)); err != nil {
		return nil, fmt.Errorf("job %d: %w", s.JobID, err)
	}

	shim, release, status, err := e.startShim(dir)
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", s.JobID, err)
	}
	defer release.Close()
	defer status.Close()
	pid := shim.Process.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("job %d: pidfd_open shim: %w", s.JobID, err)
	}
	id, err := identify(pid)
	if err == nil {
		err = grp.enterShim(pid)
	}
	if err == nil {
		err = writeVolatileJSON(filepath.Join(dir, shimPIDFile), id)
	}
	if err == nil {
		_, err = release.Write([]byte{1})
	}
	if err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("job %d: hand over to shim: %w", s.JobID, err)
	}
	release.Close()

	jobPID, err := readStatus(ctx, status)
	if err != nil && ctx.Err() == nil {
		// The shim reported a failure or died: nothing runs.
		unix.Close(pidfd)
		return nil, fmt.Errorf("job %d: shim: %w%s", s.JobID, err, lastLogLine(dir))
	}
	if err != nil {
		// Given up waiting, but the shim is released and owns the job now:
		// report through the handle rather than lose it.
		log.Warn("no start report from shim", "err", err)
		err = nil
	}
	go func() { _ = shim.Wait() }() // reap; Handle watches the pidfd
	log.Info("job launched", "shim", pid, "pid", jobPID, "isolation", e.iso)
	return e.newHandle(s.JobID, id, jobPID, pidfd), nil
}

// startShim starts the shim in a new session. release (stdin of the shim)
// lets it go on; status (its fd 3) carries "ok <pid>" once the job runs.
func (e *Executor) startShim(dir string) (*osexec.Cmd, *os.File, *os.File, error) {
	logf, err := os.OpenFile(filepath.Join(dir, shimLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open shim log: %w", err)
	}
	defer logf.Close()
	relR, relW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("release pipe: %w", err)
	}
	defer relR.Close()
	stR, stW, err := os.Pipe()
	if err != nil {
		relW.Close()
		return nil, nil, nil, fmt.Errorf("status pipe: %w", err)
	}
	defer stW.Close()
	cmd := osexec.Command(e.cfg.ShimPath, dir)
	cmd.Args[0] = "hpc-shim"
	cmd.Env = []string{shimEnv + "=1"}
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = relR, logf, logf
	cmd.ExtraFiles = []*os.File{stW}
	// Its own session: the shim (and the job) outlive the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The shim outlives the daemon: it must not hold descriptors the daemon
	// inherited without close-on-exec (a wrapper's lock file, a socket
	// passed in), or a lock stays taken and a socket stays open for as long
	// as any job runs. Go opens its own with O_CLOEXEC already; os/exec
	// still hands the shim the ones it is given.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := cmd.Start(); err != nil {
		relW.Close()
		stR.Close()
		return nil, nil, nil, fmt.Errorf("start shim %s: %w", e.cfg.ShimPath, err)
	}
	return cmd, relW, stR, nil
}

// lastLogLine returns "; <last line of shim.log>" for error messages.
func lastLogLine(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, shimLogFile))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err != nil || lines[len(lines)-1] == "" {
		return ""
	}
	return "; " + lines[len(lines)-1]
}

// readStatus waits for the shim's start report.
func readStatus(ctx context.Context, status *os.File) (int, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := bufio.NewReader(status).ReadString('\n')
		ch <- res{line, err}
	}()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return 0, fmt.Errorf("read shim status: %w", r.err)
		}
		f := strings.Fields(r.line)
		if len(f) == 2 && f[0] == "ok" {
			return strconv.Atoi(f[1])
		}
		return 0, fmt.Errorf("shim: %s", strings.TrimSpace(strings.TrimPrefix(r.line, "err")))
	}
}

// Adopt reattaches to a job after an agent restart: still running (watched
// through a pidfd on its shim), or finished (its result is on disk), or lost
// (the shim died without a result: Wait reports it and cleans up).
func (e *Executor) Adopt(jobID uint64) (*Handle, error) {
	dir := e.jobDir(jobID)
	var rec record
	if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, derr := os.Stat(dir); errors.Is(derr, os.ErrNotExist) && e.sp != nil {
				if j := e.sp.job(jobID); j != nil {
					return &Handle{e: e, jobID: jobID, sj: j, jobPID: j.pid}, nil
				}
			}
			return nil, fmt.Errorf("adopt job %d: %w", jobID, ErrUnknownJob)
		}
		return nil, fmt.Errorf("adopt job %d: %w", jobID, err)
	}
	var shimID, jobID2 procIdentity
	_ = readJSON(filepath.Join(dir, shimPIDFile), &shimID)
	_ = readJSON(filepath.Join(dir, jobPIDFile), &jobID2)
	pidfd := -1
	if shimID.PID > 0 {
		if fd, err := unix.PidfdOpen(shimID.PID, 0); err == nil {
			// Checked after opening: from now on the pidfd pins this
			// process, so a match cannot be a reused pid.
			if shimID.alive() {
				pidfd = fd
			} else {
				unix.Close(fd)
			}
		}
	}
	return e.newHandle(jobID, shimID, jobID2.PID, pidfd), nil
}

// Known lists the job ids that have state directories, for reconciliation.
func (e *Executor) Known() ([]uint64, error) {
	ents, err := os.ReadDir(e.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("list state dir: %w", err)
	}
	var ids []uint64
	for _, ent := range ents {
		if id, err := strconv.ParseUint(ent.Name(), 10, 64); err == nil && ent.IsDir() && id > 0 {
			ids = append(ids, id)
		}
	}
	if e.sp != nil {
		ids = append(ids, e.sp.known()...)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Release forgets a job once the server has durably recorded its outcome:
// any process still left is killed, then its cgroup and state dir go.
func (e *Executor) Release(jobID uint64) error {
	dir := e.jobDir(jobID)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if e.sp != nil && e.sp.job(jobID) != nil {
			return e.sp.release(jobID)
		}
		return nil // already released
	}
	if h, err := e.Adopt(jobID); err == nil && h.running() {
		// Still running: the server no longer wants it. Cancel, give the
		// shim a moment to record that, then make sure it is gone.
		if err := h.Cancel("released by the agent while running"); err != nil {
			e.log.Warn("release: cancel", "job", jobID, "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := h.Wait(ctx); err != nil {
			_ = unix.Kill(h.shim.PID, unix.SIGKILL)
		}
		cancel()
	}
	// A shim still alive here (its job could not be adopted) goes too,
	// after everything below it.
	var shimID procIdentity
	_ = readJSON(filepath.Join(dir, shimPIDFile), &shimID)
	if !shimID.alive() {
		shimID.PID = 0
	}
	drv, iso := e.driverFor(jobID)
	if err := killJobWith(drv, iso, jobID, shimID.PID); err != nil {
		return fmt.Errorf("release job %d: %w", jobID, err)
	}
	if shimID.PID > 0 {
		_ = unix.Kill(shimID.PID, unix.SIGKILL)
	}
	if grp, err := drv.load(jobID); err == nil {
		if err := grp.remove(); err != nil {
			return fmt.Errorf("release job %d: %w", jobID, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("release job %d: %w", jobID, err)
	}
	return nil
}

// killJob kills every process of the job except the shim.
func (e *Executor) killJob(jobID uint64, shimPID int) error {
	drv, iso := e.driverFor(jobID)
	return killJobWith(drv, iso, jobID, shimPID)
}

func killJobWith(drv driver, iso Isolation, jobID uint64, shimPID int) error {
	grp, err := drv.load(jobID)
	if errors.Is(err, errNoCgroup) {
		return nil
	}
	if err != nil {
		return err
	}
	if iso == IsolationNone && shimPID <= 0 {
		return nil // no tree to walk without the shim
	}
	return grp.killAll(shimPID)
}

// driverFor returns the cgroup driver a job was launched under, from its
// launch record: after a restart with another isolation mode or cgroup
// parent (an upgrade, the data directory reached through another path),
// the executor's own driver would look in the wrong place and kill
// nothing. Without a readable record it is the executor's own.
func (e *Executor) driverFor(jobID uint64) (driver, Isolation) {
	var rec record
	if err := readJSON(filepath.Join(e.jobDir(jobID), recordFile), &rec); err != nil {
		return e.drv, e.iso
	}
	if rec.Isolation == e.iso && rec.CgroupParent == e.cfg.CgroupParent && rec.V2Mount == e.v2mount {
		return e.drv, e.iso
	}
	drv, err := newDriver(rec.Isolation, rec.CgroupParent, rec.V2Mount)
	if err != nil {
		e.log.Warn("job launched under another isolation that is not available now", "job", jobID, "isolation", rec.Isolation, "err", err)
		return e.drv, e.iso
	}
	return drv, rec.Isolation
}
