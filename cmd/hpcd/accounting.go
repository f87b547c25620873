package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/server"
)

// Flags of accounting and multifactor priority, shared by the daemon
// commands. Their defaults are Slurm's where Slurm has one.
func accountingFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "archive-retention", Value: "0", Usage: "how long ended jobs stay in the accounting archive: a duration (8760h) or days (365d); 0 keeps them forever"},
		&cli.StringFlag{Name: "fairshare-half-life", Value: "7d", Usage: "fair-share usage this long ago counts half (duration or days)"},
		&cli.StringFlag{Name: "shares", Usage: "fair-share shares per account: `ACCOUNT=N,...` (others get 1)"},
		&cli.Float64Flag{Name: "weight-priority", Value: 1000, Usage: "priority weight of a job's own priority (0..1000 scaled to 0..1)"},
		&cli.Float64Flag{Name: "weight-age", Value: 168, Usage: "priority weight of waiting, full at --max-age"},
		&cli.Float64Flag{Name: "weight-fairshare", Value: 1000, Usage: "priority weight of the account's fair-share factor"},
		&cli.StringFlag{Name: "max-age", Value: "7d", Usage: "wait at which the age factor is full"},
		&cli.Float64Flag{Name: "fairshare-gpu-weight", Usage: "what one GPU-second counts in CPU-seconds of fair-share usage (Slurm's TRESBillingWeights GRES/gpu=); 0 counts CPUs only"},
	}
}

// accountingOptions is what the accounting flags say.
type accountingOptions struct {
	retention time.Duration
	fairShare server.FairShare
	weights   placement.PriorityWeights
}

// parseDays reads a duration, also in days ("7d").
func parseDays(flag, s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(d, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	if s == "0" {
		return 0, nil
	}
	return 0, fmt.Errorf("--%s %q: want a duration (36h) or days (7d)", flag, s)
}

// readAccountingFlags checks the accounting flags; a mistake is bad usage.
func readAccountingFlags(c *cli.Context) (accountingOptions, error) {
	var o accountingOptions
	var err error
	bad := func(err error) (accountingOptions, error) { return o, cli.Exit("hpcd: "+err.Error(), 2) }
	if o.retention, err = parseDays("archive-retention", c.String("archive-retention")); err != nil {
		return bad(err)
	}
	if o.fairShare.HalfLife, err = parseDays("fairshare-half-life", c.String("fairshare-half-life")); err != nil {
		return bad(err)
	}
	if o.fairShare.HalfLife == 0 {
		return bad(fmt.Errorf("--fairshare-half-life must be more than 0"))
	}
	if o.weights.AgeMax, err = parseDays("max-age", c.String("max-age")); err != nil {
		return bad(err)
	}
	if s := c.String("shares"); s != "" {
		o.fairShare.Shares = map[string]float64{}
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			n, err := strconv.ParseFloat(v, 64)
			if !ok || k == "" || err != nil || n <= 0 {
				return bad(fmt.Errorf("--shares %q: want ACCOUNT=N,... with N > 0", kv))
			}
			o.fairShare.Shares[k] = n
		}
	}
	o.weights.Priority, o.weights.Age, o.weights.FairShare = c.Float64("weight-priority"), c.Float64("weight-age"), c.Float64("weight-fairshare")
	o.fairShare.GPUWeight = c.Float64("fairshare-gpu-weight")
	for name, w := range map[string]float64{"weight-priority": o.weights.Priority, "weight-age": o.weights.Age, "weight-fairshare": o.weights.FairShare, "fairshare-gpu-weight": o.fairShare.GPUWeight} {
		if w < 0 {
			return bad(fmt.Errorf("--%s must be 0 or more", name))
		}
	}
	return o, nil
}
