package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources"
	"github.com/hpc-sched/hpc/resources/inventory"
	"github.com/hpc-sched/hpc/resources/nodeclass"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run a node's agent: joins the server, reports the node's inventory and runs the jobs it is given",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "the server's https://HOST:PORT (default: the first in the join file)"},
			&cli.StringFlag{Name: "join", Usage: "the server's agent-join file, copied to this node", Required: true},
			&cli.StringFlag{Name: "name", Usage: "this node's name (default: the host name)"},
			&cli.StringFlag{Name: "data-dir", Value: defaultAgentDataDir(), Usage: "where the agent keeps its certificate and job state"},
			&cli.StringFlag{Name: "features", Usage: "comma-separated node features (labels) jobs may ask for"},
			&cli.StringFlag{Name: "isolation", Value: "auto", Usage: "auto (cgroups when possible) or none (rlimits only)"},
			&cli.StringFlag{Name: "listen", Usage: "local Unix socket for `hpcsub login` (default DATA_DIR/agent.sock)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.IntFlag{Name: "virtual", Usage: "run `N` virtual nodes of --node-class instead of this machine's (a test and scale tool: their jobs run nothing)"},
			&cli.StringFlag{Name: "node-class", Usage: "node-class `FILE` (HCL) the virtual nodes are made from"},
			gpuSampleFlag(),
		},
		Action: func(c *cli.Context) error {
			return runAgent(c.Context, agentOptions{
				server: c.String("server"), join: c.String("join"), name: c.String("name"),
				dataDir: c.String("data-dir"), features: c.String("features"), isolation: c.String("isolation"),
				listen: c.String("listen"), logLevel: c.String("log-level"),
				virtual: c.Int("virtual"), nodeClass: c.String("node-class"), virtualSet: c.IsSet("virtual"),
				gpuSample: c.Duration("gpu-sample-interval"),
			})
		},
	}
}

type agentOptions struct {
	server, join, name, dataDir, features, isolation, listen, logLevel string
	virtual                                                            int // --virtual N (0: this machine)
	virtualSet                                                         bool
	nodeClass                                                          string
	gpuSample                                                          time.Duration
}

func defaultAgentDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/hpc-agent"
	}
	return filepath.Join(api.DefaultDataDir(), "agent")
}

// parseFeatures splits --features into checked, de-duplicated labels.
func parseFeatures(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(f) > api.MaxFeatureLen || strings.ContainsAny(f, " \t\n\"'") {
			return nil, fmt.Errorf("feature %q: 1..%d characters without spaces or quotes", f, api.MaxFeatureLen)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func runAgent(parent context.Context, o agentOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	// Every flag is checked before anything is created or sent.
	if err := checkIsolation("hpcd agent", o.isolation); err != nil {
		return err
	}
	if err := checkGPUSampleInterval("hpcd agent", o.gpuSample); err != nil {
		return err
	}
	features, err := parseFeatures(o.features)
	if err != nil {
		return cli.Exit("hpcd agent: --features: "+err.Error(), 2)
	}
	var vnodes []nodeclass.Node
	switch {
	case o.virtualSet && o.name != "":
		return cli.Exit("hpcd agent: --name and --virtual exclude each other: virtual nodes are named after their class (<class>-0001)", 2)
	case o.virtualSet:
		if vnodes, err = virtualNodes(o.virtual, o.nodeClass); err != nil {
			return err
		}
	case o.nodeClass != "":
		return cli.Exit("hpcd agent: --node-class goes with --virtual N", 2)
	}
	jf, err := agent.LoadJoinFile(o.join)
	if err != nil {
		return cli.Exit("hpcd agent: "+err.Error(), 2)
	}
	serverAddr := o.server
	if serverAddr == "" {
		if len(jf.Servers) == 0 {
			return cli.Exit("hpcd agent: the join file names no server: give --server https://HOST:PORT", 2)
		}
		serverAddr = jf.Servers[0]
	}
	if u, err := url.Parse(serverAddr); err != nil || u.Scheme != "https" || u.Host == "" {
		return cli.Exit(fmt.Sprintf("hpcd agent: --server %q: write https://HOST:PORT", serverAddr), 2)
	}
	name := o.name
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return fmt.Errorf("host name: %w", err)
		}
	}
	if err := api.CheckNodeName(name); err != nil {
		return cli.Exit("hpcd agent: --name: "+err.Error(), 2)
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// 0711 as for `hpcd dev`: job users reach their own exec/<id>/ files.
	if _, err := os.Stat(dataDir); err != nil {
		if err := os.MkdirAll(dataDir, 0o711); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		os.Chmod(dataDir, 0o711)
	}
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dataDir = real
	}
	if vnodes != nil {
		return runVirtualAgents(ctx, vnodes, features, jf, serverAddr, dataDir, log)
	}
	creds, err := agent.Join(ctx, jf, serverAddr, name, dataDir)
	if err != nil {
		return fmt.Errorf("%w", err)
	}

	inv, err := inventory.Discover(ctx, log)
	if err != nil {
		return fmt.Errorf("read this machine's inventory: %w", err)
	}
	ex, criu, err := newNodeExecutor(ctx, log, dataDir, o.isolation, 0)
	if err != nil {
		return err
	}
	defer ex.Close()

	// Watchers outlive ctx until the runner is done, so outcomes that come
	// in while it stops are still held (on disk) for the next start.
	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	local := agent.New(agentCtx, name, ex, inv.GPUs, nil, log)
	startGPUSampler(agentCtx, local, name, o.gpuSample, log)
	reg := agent.Registration(name, inv, string(ex.Isolation()), features, memoryReserve(inv.Memory))
	reg.NUMA = agent.NUMANodes("/sys", reg.CPUIDs)
	if criu != nil {
		reg.CRIU = criu.Version
	}
	tr := agent.NewHTTPS(serverAddr, creds)
	health := agent.NewGPUHealth(ctx, log)
	runner := agent.NewRunner(agent.Config{Node: reg, Log: log, Health: health.Check, Lease: true}, tr, local)
	local.SetReport(runner.Report)
	adopted, err := local.AdoptAll(runner.Adopted)
	if err != nil {
		return err
	}

	sock := o.listen
	if sock == "" {
		sock = filepath.Join(dataDir, "agent.sock")
	}
	ln, err := listenUnix(sock)
	if err != nil {
		return err
	}
	tokens := agent.TokenProxy(tr, log)
	go tokens.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tokens.Shutdown(sctx)
		os.Remove(ln.Addr().String())
	}()

	log.Info("hpcd agent starting", "node", name, "server", serverAddr, "data_dir", dataDir,
		"cpus", len(reg.CPUIDs), "memory", resources.FormatBytes(reg.Memory), "gpus", len(reg.GPUs),
		"features", features, "isolation", reg.Isolation, "adopted", len(adopted), "socket", ln.Addr().String())
	err = runner.Run(ctx)
	stopAgent()
	if err != nil {
		if errors.Is(err, api.ErrAgentRefused) {
			return cli.Exit("hpcd agent: "+err.Error(), 1)
		}
		return err
	}
	log.Info("agent stopped; running jobs keep running and are adopted at the next start")
	return nil
}
