// Command hpcd is the batch system's daemon: `hpcd dev` runs server and
// agent in one process on one machine, `hpcd server` and `hpcd agent` a
// cluster's central server and its nodes, and `hpcd simulate` replays a
// workload trace through the placer.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/exec"
)

func main() {
	// hpcd re-executes itself as the per-job shim; that process never
	// reaches the CLI.
	if exec.ShimMain() {
		return
	}
	os.Exit(run(os.Args))
}

func run(args []string) int {
	app := &cli.App{
		Name:  "hpcd",
		Usage: "GPU-aware HPC batch system daemon",
		Commands: []*cli.Command{
			devCommand(),
			serverCommand(),
			agentCommand(),
			simulateCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cli.Exit(fmt.Sprintf("hpcd: %v (see hpcd %s --help)", err, c.Command.Name), 2)
		},
	}
	if err := app.Run(args); err != nil {
		if ec, ok := err.(cli.ExitCoder); ok {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "hpcd:", err)
		return 1
	}
	return 0
}
