package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/exec"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/resources"
	"github.com/hpc-sched/hpc/resources/inventory"
	"github.com/hpc-sched/hpc/server"
	"github.com/hpc-sched/hpc/store"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a one-machine cluster: server and agent in one process, embedded defaults",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: api.DefaultDataDir(), Usage: "where the store and job state live"},
			&cli.StringFlag{Name: "listen", Value: api.DefaultSocketPath(), Usage: "Unix socket to serve the API on (path or unix:///path)"},
			&cli.StringFlag{Name: "policy", Value: string(placement.EASY), Usage: "backfilling: fcfs, easy or conservative"},
			&cli.DurationFlag{Name: "default-walltime", Value: time.Hour, Usage: "walltime of jobs whose file gives none"},
			&cli.DurationFlag{Name: "kill-wait", Value: 30 * time.Second, Usage: "time a cancelled job gets between SIGTERM and SIGKILL (Slurm's KillWait); 0 kills at once"},
			&cli.StringFlag{Name: "isolation", Value: "auto", Usage: "auto (cgroups when possible) or none (rlimits only)"},
			&cli.StringFlag{Name: "node-name", Usage: "name of this node (default: the host name)"},
			&cli.StringFlag{Name: "checkpoint-root", Usage: "where jobs keep their checkpoints, one directory per job (default: <data-dir>/checkpoints)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			drainAfterFlag,
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the daemon to this file (for benchmarks)", Hidden: true},
			&cli.Float64Flag{Name: "job-pids-share", Value: exec.DefaultPidsShare, Usage: "share of kernel.pid_max one job may use"},
			gpuSampleFlag(),
			pprofFlag,
		}, append(accountingFlags(), limitsFlags()...)...),
		Action: func(c *cli.Context) error {
			acct, err := readAccountingFlags(c)
			if err != nil {
				return err
			}
			limits, accounts, err := readLimits(c)
			if err != nil {
				return err
			}
			return runDev(c.Context, devOptions{
				accounting: acct,
				dataDir:    c.String("data-dir"),
				listen:     c.String("listen"),
				policy:     placement.Backfill(c.String("policy")),
				walltime:   c.Duration("default-walltime"),
				isolation:  c.String("isolation"),
				nodeName:   c.String("node-name"),
				ckptRoot:   c.String("checkpoint-root"),
				logLevel:   c.String("log-level"),
				cpuprof:    c.String("cpuprofile"),
				killWait:   c.Duration("kill-wait"),
				drainAfter: c.Int("drain-after-host-failures"),
				limits:     limits,
				accounts:   accounts,
				pidsShare:  c.Float64("job-pids-share"),
				gpuSample:  c.Duration("gpu-sample-interval"),
				pprof:      c.Bool("pprof"),
			})
		},
	}
}

type devOptions struct {
	dataDir, listen, isolation, nodeName, logLevel, cpuprof string
	ckptRoot                                                string
	policy                                                  placement.Backfill
	walltime, killWait                                      time.Duration
	accounting                                              accountingOptions
	drainAfter                                              int
	limits                                                  server.Limits
	accounts                                                map[string][]string
	pidsShare                                               float64
	gpuSample                                               time.Duration
	pprof                                                   bool
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Exit(fmt.Sprintf("hpcd: --log-level %q: use debug, info, warn or error", level), 2)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runDev(parent context.Context, o devOptions) error {
	setServerGC() // memory.go
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	// Every flag is checked before anything is created on disk.
	if err := checkSchedFlags("hpcd", o.policy, o.killWait); err != nil {
		return err
	}
	if err := checkIsolation("hpcd", o.isolation); err != nil {
		return err
	}
	if err := checkGPUSampleInterval("hpcd", o.gpuSample); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	o.dataDir = dataDir
	// 0711: job users must reach their own files in exec/<id>/ (a script
	// job's job.sh), but nobody may list what is here. A directory that
	// exists already is the admin's: its mode is left alone, with a word
	// when job users could not get through it.
	if st, err := os.Stat(o.dataDir); err == nil {
		if st.Mode().Perm()&0o001 == 0 {
			log.Warn("job users cannot enter the data directory: script jobs of users other than the daemon's will fail; chmod o+x it", "data_dir", o.dataDir)
		}
	} else if err := os.MkdirAll(o.dataDir, 0o711); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	} else if err := os.Chmod(o.dataDir, 0o711); err != nil { // past the umask
		return fmt.Errorf("open data directory to job users: %w", err)
	}
	// The cgroup subtree is named after the real path, whatever link led here.
	if real, err := filepath.EvalSymlinks(o.dataDir); err == nil {
		o.dataDir = real
	}
	st, err := store.Open(filepath.Join(o.dataDir, "hpc.db"))
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("another hpcd is already using %s: stop it first, or pass another --data-dir", o.dataDir)
		}
		return err
	}
	defer st.Close()

	inv, err := inventory.Discover(ctx, log)
	if err != nil {
		return fmt.Errorf("read this machine's inventory: %w", err)
	}
	ex, criu, err := newNodeExecutor(ctx, log, o.dataDir, o.isolation, o.pidsShare)
	if err != nil {
		return err
	}

	ckptRoot, err := checkpointRoot(o.ckptRoot, o.dataDir)
	if err != nil {
		return err
	}
	admins := []uint32{uint32(os.Getuid())}
	depth, _ := o.policy.Depth() // checked with the other flags
	srv, err := server.New(server.Config{
		Policy:                 placement.Policy{Depth: depth, Weights: o.accounting.weights},
		ArchiveRetention:       o.accounting.retention,
		FairShare:              o.accounting.fairShare,
		DefaultWalltime:        o.walltime,
		AllowRoot:              true,
		AdminUIDs:              admins,
		CheckpointRoot:         ckptRoot,
		CancelGrace:            o.killWait,
		DrainAfterHostFailures: drainAfterHostFailures(o.drainAfter),
		Limits:                 o.limits,
		Accounts:               o.accounts,
		Pprof:                  o.pprof,
	}, st, log)
	if err != nil {
		return err
	}

	name := o.nodeName
	if name == "" {
		name = inv.Hostname
	}
	// The agent's watchers outlive the listener until shutdown is done, so
	// outcomes that arrive while draining connections are still stored.
	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	// The node's agent speaks the same protocol as `hpcd agent`, in process.
	ag := agent.New(agentCtx, name, ex, inv.GPUs, nil, log)
	startGPUSampler(agentCtx, ag, name, o.gpuSample, log)
	reg := agent.Registration(name, inv, string(ex.Isolation()), nil, memoryReserve(inv.Memory))
	reg.NUMA = agent.NUMANodes("/sys", reg.CPUIDs)
	if criu != nil {
		reg.CRIU = criu.Version
	}
	runner := agent.NewRunner(agent.Config{Node: reg, Log: log}, srv.InProcess(name), ag)
	ag.SetReport(runner.Report)
	if _, err := ag.AdoptAll(runner.Adopted); err != nil {
		return err
	}
	if err := runner.Register(ctx); err != nil {
		return err
	}
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		if err := runner.Run(agentCtx); err != nil {
			log.Error("agent stopped", "err", err)
		}
	}()
	// One node only: jobs recorded on a node of another name (the host was
	// renamed, --node-name changed) have nobody left to report them.
	srv.EndJobsOnNodesWithoutAgent("its node is not part of this one-machine cluster any more")

	ln, err := listenUnix(o.listen)
	if err != nil {
		return err
	}
	// Limits on connections per user, idle time and descriptors: one user
	// must not be able to starve the launches of everyone's jobs.
	ln = srv.Listen(ln)
	hs := srv.HTTPServer()
	ran := make(chan struct{})
	go func() { srv.Run(ctx); close(ran) }()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("hpcd dev ready", "socket", ln.Addr().String(), "data_dir", o.dataDir, "node", name,
		"cpus", len(reg.CPUIDs), "memory", resources.FormatBytes(reg.Memory), "gpus", len(reg.GPUs),
		"isolation", reg.Isolation, "policy", o.policy)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		stop() // the scheduling loop ends too, before the store closes
	}
	log.Info("shutting down; running jobs keep running and are adopted at the next start")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	<-ran // no pass or launch may touch the store after it closes
	stopAgent()
	<-runnerDone
	ex.Close()
	os.Remove(ln.Addr().String())
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// shimBeside returns the small hpc-shim binary installed next to hpcd, so
// each job starts a third of hpcd's size twice (shim and init stage);
// without one, hpcd re-executes itself (""). A shim that others could
// replace would run with the daemon's rights for every job, so such a file
// is ignored.
func shimBeside(log *slog.Logger) string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "hpc-shim")
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return ""
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && ((sys.Uid != 0 && sys.Uid != uint32(os.Geteuid())) || st.Mode()&0o022 != 0) {
		log.Warn("ignoring hpc-shim: it must belong to root or the daemon's user and not be writable by others", "path", p)
		return ""
	}
	return p
}

// cgroupParent names this daemon's cgroup subtree after its data
// directory: two daemons on one host (tests do this) number their jobs
// from 1 each, and must never share hpc/job-1.
func cgroupParent(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "hpc/" + hex.EncodeToString(sum[:4])
}

// memoryReserve is what the node keeps for the system and the daemon.
func memoryReserve(total int64) int64 {
	r := total / 20
	r = max(r, 256<<20)
	return min(r, 2<<30)
}

// listenUnix listens on a Unix socket any local user may connect to (the
// server authenticates each connection by its peer credentials). A
// leftover socket of a dead daemon is replaced; a live one is an error.
func listenUnix(addr string) (net.Listener, error) {
	path := strings.TrimPrefix(addr, "unix://")
	if !filepath.IsAbs(path) {
		return nil, cli.Exit(fmt.Sprintf("hpcd: --listen %q: give an absolute socket path (HTTPS listeners are for `hpcd server`)", addr), 2)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if err := api.CheckSocketPath(path); err != nil {
		return nil, fmt.Errorf("refusing to listen on %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another hpcd is already listening on %s", path)
	}
	// Replace only a dead daemon's socket, never a file that happens to be
	// at the path.
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--listen %s: the path exists and is not a socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("open socket %s to local users: %w", path, err)
	}
	return ln, nil
}

// checkpointRoot makes the directory that holds the jobs' checkpoint
// directories: root's, 0711, so that each job's own directory (made by the
// executor, owned by the job's user, 0700) can be reached but not listed.
func checkpointRoot(flag, dataDir string) (string, error) {
	root := flag
	if root == "" {
		root = filepath.Join(dataDir, "checkpoints")
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("--checkpoint-root: %w", err)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", fmt.Errorf("create the checkpoint root: %w", err)
	}
	if flag == "" {
		if err := os.Chmod(root, 0o711); err != nil { // past the umask
			return "", fmt.Errorf("checkpoint root: %w", err)
		}
	}
	return root, nil
}
