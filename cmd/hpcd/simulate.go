package main

import "github.com/urfave/cli/v2"

// simulateCommand is replaced by the simulator's real command.
func simulateCommand() *cli.Command {
	return &cli.Command{Name: "simulate", Usage: "replay a workload trace (not yet built)"}
}
