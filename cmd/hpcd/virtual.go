package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/agent/virtual"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
)

// virtualNodes reads --node-class and picks --virtual N nodes of it; a
// mistake in either is bad usage (exit 2), with the file's diagnostics.
func virtualNodes(n int, file string) ([]nodeclass.Node, error) {
	if file == "" {
		return nil, cli.Exit("hpcd agent: --virtual needs --node-class FILE (see docs/admin-guide.md, Node-class files)", 2)
	}
	f, err := nodeclass.ReadFile(file)
	if err != nil {
		var ne *nodeclass.Error
		if errors.As(err, &ne) {
			return nil, cli.Exit("hpcd agent: --node-class:\n"+strings.Join(ne.Lines(), "\n"), 2)
		}
		return nil, cli.Exit("hpcd agent: --node-class: "+err.Error(), 2)
	}
	nodes, err := virtual.Spread(f, n)
	if err != nil {
		return nil, cli.Exit("hpcd agent: --virtual: "+err.Error(), 2)
	}
	return nodes, nil
}

// runVirtualAgents is `hpcd agent --virtual N --node-class FILE`: N
// virtual nodes in this process, each joining the cluster with its own
// certificate (kept under DATA_DIR/virtual/NAME) and speaking the agent
// protocol over HTTPS like a real agent. A test and scale tool: their jobs
// run nothing (package agent/virtual).
func runVirtualAgents(ctx context.Context, nodes []nodeclass.Node, features []string, jf api.JoinFile, serverAddr, dataDir string, log *slog.Logger) error {
	tr := func(ctx context.Context, name string) (agent.Transport, error) {
		creds, err := agent.Join(ctx, jf, serverAddr, name, filepath.Join(dataDir, "virtual", name))
		if err != nil {
			return nil, err
		}
		return agent.NewHTTPS(serverAddr, creds), nil
	}
	fleet, err := virtual.NewFleet(ctx, nodes, features, tr, log)
	if err != nil {
		if errors.Is(err, api.ErrAgentRefused) {
			return cli.Exit("hpcd agent: "+err.Error(), 1)
		}
		return err
	}
	classes := map[string]int{}
	for _, nd := range nodes {
		classes[nd.Class]++
	}
	log.Info("virtual agents starting (a test and scale tool: their jobs run nothing)",
		"nodes", fleet.Len(), "classes", fmt.Sprint(classes), "server", serverAddr, "data_dir", dataDir)
	if err := fleet.Register(ctx); err != nil {
		return cli.Exit("hpcd agent: "+err.Error(), 1)
	}
	if err := fleet.Run(ctx); err != nil {
		return cli.Exit("hpcd agent: "+err.Error(), 1)
	}
	log.Info("virtual agents stopped")
	return nil
}
