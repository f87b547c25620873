package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/server"
	"github.com/hpc-sched/hpc/store"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run the cluster's central server: users on its Unix socket or HTTPS, agents on HTTPS",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: api.DefaultDataDir(), Usage: "where the store, the cluster CA and agent-join live"},
			&cli.StringSliceFlag{Name: "listen", Usage: "unix:///path.sock or https://HOST:PORT (repeatable)"},
			&cli.StringFlag{Name: "policy", Value: string(placement.EASY), Usage: "backfilling: fcfs, easy or conservative"},
			&cli.DurationFlag{Name: "default-walltime", Value: time.Hour, Usage: "walltime of jobs whose file gives none"},
			&cli.DurationFlag{Name: "down-timeout", Value: 30 * time.Second, Usage: "a node whose agent has not been heard from this long is DOWN"},
			&cli.StringFlag{Name: "checkpoint-root", Usage: "where jobs keep their checkpoints, one directory per job: shared storage at the same path on every node (default: <workdir>/.hpc-checkpoint/<id>; set one for criu jobs)"},
			&cli.DurationFlag{Name: "kill-wait", Value: 30 * time.Second, Usage: "time a cancelled job gets between SIGTERM and SIGKILL (Slurm's KillWait); 0 kills at once"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "admin-tokens-via-agent", Usage: "let agents obtain HTTPS tokens for admins (root and this server's uid); off, admins log in on the server host"},
			pprofFlag,
			drainAfterFlag,
		}, append(accountingFlags(), limitsFlags()...)...),
		Action: func(c *cli.Context) error {
			// The cluster's server is where fair-share, priority weights and
			// retention live: the same flags as `hpcd dev`, the same defaults.
			acct, err := readAccountingFlags(c)
			if err != nil {
				return err
			}
			limits, accounts, err := readLimits(c)
			if err != nil {
				return err
			}
			return runServer(c.Context, serverOptions{
				accounting:  acct,
				drainAfter:  c.Int("drain-after-host-failures"),
				limits:      limits,
				accounts:    accounts,
				dataDir:     c.String("data-dir"),
				listen:      c.StringSlice("listen"),
				policy:      placement.Backfill(c.String("policy")),
				walltime:    c.Duration("default-walltime"),
				downTimeout: c.Duration("down-timeout"),
				killWait:    c.Duration("kill-wait"),
				ckptRoot:    c.String("checkpoint-root"),
				logLevel:    c.String("log-level"),
				adminTokens: c.Bool("admin-tokens-via-agent"),
				pprof:       c.Bool("pprof"),
			})
		},
	}
}

type serverOptions struct {
	dataDir, logLevel     string
	listen                []string
	policy                placement.Backfill
	walltime, downTimeout time.Duration
	killWait              time.Duration
	limits                server.Limits
	accounts              map[string][]string
	adminTokens           bool // Config.AdminTokensViaAgent
	ckptRoot              string
	accounting            accountingOptions
	drainAfter            int  // the flag's 0 is never
	pprof                 bool // Config.Pprof
}

// splitListen sorts --listen values into socket paths and HTTPS host:ports.
func splitListen(listen []string) (unixPaths, httpsAddrs []string, err error) {
	if len(listen) == 0 {
		return nil, nil, cli.Exit("hpcd server: give at least one --listen unix:///path.sock or https://HOST:PORT", 2)
	}
	for _, l := range listen {
		switch {
		case strings.HasPrefix(l, "unix://") || strings.HasPrefix(l, "/"):
			unixPaths = append(unixPaths, l)
		case strings.HasPrefix(l, "https://"):
			u, err := url.Parse(l)
			if err != nil || u.Port() == "" || (u.Path != "" && u.Path != "/") {
				return nil, nil, cli.Exit(fmt.Sprintf("hpcd server: --listen %q: write https://HOST:PORT", l), 2)
			}
			httpsAddrs = append(httpsAddrs, u.Host)
		default:
			return nil, nil, cli.Exit(fmt.Sprintf("hpcd server: --listen %q: use unix:///path.sock or https://HOST:PORT", l), 2)
		}
	}
	return unixPaths, httpsAddrs, nil
}

// joinAddress is the address agents are told to use for a listener: an
// unspecified host (0.0.0.0, ::) becomes the host name.
func joinAddress(hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

func runServer(parent context.Context, o serverOptions) error {
	setServerGC() // memory.go
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	if err := checkSchedFlags("hpcd server", o.policy, o.killWait); err != nil {
		return err
	}
	if o.downTimeout < 300*time.Millisecond {
		return cli.Exit(fmt.Sprintf("hpcd server: --down-timeout %s is too short (at least 300ms)", o.downTimeout), 2)
	}
	unixPaths, httpsAddrs, err := splitListen(o.listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// The CA key and the join secret live here: nobody else may enter.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := store.Open(filepath.Join(dataDir, "hpc.db"))
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("another hpcd is already using %s: stop it first, or pass another --data-dir", dataDir)
		}
		return err
	}
	defer st.Close()
	ckptRoot := ""
	if o.ckptRoot != "" {
		// Not under the data directory, which is root's alone (0700):
		// jobs must reach their checkpoint directories on every node.
		if ckptRoot, err = checkpointRoot(o.ckptRoot, ""); err != nil {
			return err
		}
	}
	depth, _ := o.policy.Depth() // checked with the other flags
	srv, err := server.New(server.Config{
		Policy:                 placement.Policy{Depth: depth, Weights: o.accounting.weights},
		ArchiveRetention:       o.accounting.retention,
		FairShare:              o.accounting.fairShare,
		DrainAfterHostFailures: drainAfterHostFailures(o.drainAfter),
		DefaultWalltime:        o.walltime,
		AllowRoot:              true,
		AdminUIDs:              []uint32{uint32(os.Getuid())},
		DownTimeout:            o.downTimeout,
		AdminTokensViaAgent:    o.adminTokens,
		CancelGrace:            o.killWait,
		Limits:                 o.limits,
		Accounts:               o.accounts,
		CheckpointRoot:         ckptRoot,
		Pprof:                  o.pprof,
	}, st, log)
	if err != nil {
		return err
	}

	var servers []*http.Server
	errc := make(chan error, len(unixPaths)+len(httpsAddrs))
	serve := func(hs *http.Server, ln net.Listener) {
		servers = append(servers, hs)
		go func() { errc <- hs.Serve(ln) }()
	}
	var sockets []string
	for _, p := range unixPaths {
		ln, err := listenUnix(p)
		if err != nil {
			return err
		}
		sockets = append(sockets, ln.Addr().String())
		serve(srv.HTTPServer(), srv.Listen(ln))
	}
	if len(httpsAddrs) > 0 {
		var joinAddrs []string
		for _, a := range httpsAddrs {
			joinAddrs = append(joinAddrs, joinAddress(a))
		}
		conf, err := srv.EnableAgentTLS(dataDir, joinAddrs)
		if err != nil {
			return fmt.Errorf("set up TLS: %w", err)
		}
		for _, a := range httpsAddrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("listen on https://%s: %w", a, err)
			}
			serve(&http.Server{Handler: srv.TLSHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: conf,
				ErrorLog: nil}, tls.NewListener(ln, conf))
		}
	}
	ran := make(chan struct{})
	go func() { srv.Run(ctx); close(ran) }()
	log.Info("hpcd server ready", "listen", o.listen, "data_dir", dataDir, "agent_join", filepath.Join(dataDir, "agent-join"),
		"down_timeout", o.downTimeout, "policy", o.policy)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		stop()
	}
	log.Info("shutting down; agents keep their jobs running and report to the next start")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(sctx)
	}
	<-ran
	for _, p := range sockets {
		os.Remove(p)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}
