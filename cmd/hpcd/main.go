// Command hpcd is the batch system's daemon: `hpcd dev` runs server and
// agent in one process, `hpcd server` and `hpcd agent` run them apart, and
// `hpcd simulate` replays a workload trace through the placer.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:     "hpcd",
		Usage:    "GPU-aware HPC batch system daemon",
		Commands: []*cli.Command{simulateCommand()},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "hpcd:", err)
		os.Exit(1)
	}
}
