package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/checkpoint"
	"github.com/hpc-sched/hpc/exec"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/server"
)

// checkSchedFlags checks the --policy and --kill-wait flags that hpcd dev and
// hpcd server share; cmd names the command in the --kill-wait message.
func checkSchedFlags(cmd string, policy placement.Backfill, killWait time.Duration) error {
	switch policy {
	case placement.FCFS, placement.EASY, placement.Conservative:
	default:
		return cli.Exit(fmt.Sprintf("hpcd: --policy %q: use fcfs, easy or conservative", policy), 2)
	}
	if killWait < 0 || killWait > time.Hour {
		return cli.Exit(fmt.Sprintf("%s: --kill-wait %s: use 0 to 1h", cmd, killWait), 2)
	}
	return nil
}

// checkIsolation checks the --isolation flag of hpcd dev and hpcd agent.
func checkIsolation(cmd, isolation string) error {
	if isolation != "auto" && isolation != "none" {
		return cli.Exit(fmt.Sprintf("%s: --isolation %q: use auto or none", cmd, isolation), 2)
	}
	return nil
}

// newNodeExecutor sets up the executor of a node that runs jobs (hpcd dev,
// hpcd agent) under dataDir, with transparent checkpoints where this node
// has a working CRIU >= 4.1 (the node then says so in its registration,
// hpcsub nodes). criu is nil without one.
func newNodeExecutor(ctx context.Context, log *slog.Logger, dataDir, isolation string, pidsShare float64) (*exec.Executor, *checkpoint.CRIU, error) {
	criu, err := checkpoint.FindCRIU(ctx)
	if err != nil {
		log.Info("no CRIU checkpoints on this node", "why", err)
	}
	excfg := exec.Config{
		CRIU:         criu,
		StateDir:     filepath.Join(dataDir, "exec"),
		CgroupParent: cgroupParent(dataDir),
		AllowRoot:    true,
		ShimPath:     shimBeside(log),
		PidsShare:    pidsShare,
		// One spawner per node instead of a shim per job (the shim stays
		// for restores and where the spawner cannot serve).
		Spawner: true,
	}
	if isolation == "none" {
		excfg.Isolation = exec.IsolationNone
	}
	ex, err := exec.New(excfg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("set up the executor: %w", err)
	}
	return ex, criu, nil
}

// drainAfterFlag is --drain-after-host-failures of hpcd dev and hpcd server.
var drainAfterFlag = &cli.IntFlag{Name: "drain-after-host-failures", Value: server.DefaultDrainAfterHostFailures, Usage: "drain a node after this many host failures in a row (0: never)"}

// drainAfterHostFailures is server.Config's DrainAfterHostFailures for the
// flag's value: the flag's 0 is never, where the server's 0 is its default.
func drainAfterHostFailures(flag int) int {
	if flag <= 0 {
		return -1
	}
	return flag
}
