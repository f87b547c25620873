package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/agent"
)

// gpuSampleFlag is --gpu-sample-interval of hpcd dev and hpcd agent: how
// often the node's agent samples its jobs' GPU utilisation and memory
// through NVML for their accounting records.
func gpuSampleFlag() cli.Flag {
	return &cli.DurationFlag{Name: "gpu-sample-interval", Value: agent.DefaultGPUSampleInterval,
		Usage: "how often to sample running jobs' GPU utilisation and memory through NVML (100ms to 1h)"}
}

// checkGPUSampleInterval bounds --gpu-sample-interval: under 100 ms the
// samples cost more than they tell; over an hour most runs get none.
func checkGPUSampleInterval(cmd string, d time.Duration) error {
	if d < 100*time.Millisecond || d > time.Hour {
		return cli.Exit(fmt.Sprintf("%s: --gpu-sample-interval %s: use 100ms to 1h", cmd, d), 2)
	}
	return nil
}

// startGPUSampler measures the GPUs of the jobs local launches, through
// the machine's NVML; without a driver it measures nothing and the runs'
// records say so.
func startGPUSampler(ctx context.Context, local *agent.Local, node string, interval time.Duration, log *slog.Logger) {
	local.SetGPUSampler(agent.StartGPUSampler(ctx, nvml.New(), node, interval, log))
}
