package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/server"
)

// limitsFlags are the self-protection limits and the account
// associations of the server (docs/admin-guide.md, "Limits").
func limitsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-queued-per-user", Value: server.DefaultMaxQueuedPerUser, Usage: "pending and held jobs one user may have (-1: no limit)"},
		&cli.IntFlag{Name: "max-running-per-user", Value: server.DefaultMaxRunningPerUser, Usage: "running jobs one user may have (-1: no limit)"},
		&cli.IntFlag{Name: "max-array-size", Value: server.DefaultMaxArraySize, Usage: "tasks one array may have (-1: no limit)"},
		&cli.IntFlag{Name: "max-conns-per-user", Value: server.DefaultMaxConnsPerUser, Usage: "open API connections one uid may have, root not counted (-1: no limit)"},
		&cli.DurationFlag{Name: "idle-timeout", Value: server.DefaultIdleTimeout, Usage: "close API connections idle this long"},
		&cli.IntFlag{Name: "fd-reserve", Value: server.DefaultFDReserve, Usage: "file descriptors kept free for launches and the store (-1: none)"},
		&cli.DurationFlag{Name: "token-ttl", Value: server.DefaultTokenTTL, Usage: "how long a user's HTTPS token (hpcsub login) lasts; -1s: forever"},
		&cli.StringSliceFlag{Name: "account", Usage: "USER=ACCOUNT[,ACCOUNT...]: the accounts USER may charge, the first by default (repeat per user; none given: each user's own groups)"},
	}
}

// readLimits reads limitsFlags.
func readLimits(c *cli.Context) (server.Limits, map[string][]string, error) {
	l := server.Limits{
		MaxQueuedPerUser:  c.Int("max-queued-per-user"),
		MaxRunningPerUser: c.Int("max-running-per-user"),
		MaxArraySize:      c.Int("max-array-size"),
		MaxConnsPerUser:   c.Int("max-conns-per-user"),
		IdleTimeout:       c.Duration("idle-timeout"),
		FDReserve:         c.Int("fd-reserve"),
		TokenTTL:          c.Duration("token-ttl"),
	}
	for _, v := range []*int{&l.MaxQueuedPerUser, &l.MaxRunningPerUser, &l.MaxArraySize, &l.MaxConnsPerUser, &l.FDReserve} {
		if *v == 0 {
			*v = -1 // a flag's 0 is "none": the server's 0 is "default"
		}
	}
	if l.TokenTTL == 0 {
		return l, nil, cli.Exit("hpcd: --token-ttl must be positive (or negative: tokens never expire)", 2)
	}
	if l.IdleTimeout <= 0 {
		return l, nil, cli.Exit("hpcd: --idle-timeout must be positive", 2)
	}
	accounts := map[string][]string{}
	for _, a := range c.StringSlice("account") {
		user, list, ok := strings.Cut(a, "=")
		var accts []string
		for _, x := range strings.Split(list, ",") {
			if x = strings.TrimSpace(x); x != "" {
				accts = append(accts, x)
			}
		}
		if !ok || strings.TrimSpace(user) == "" || len(accts) == 0 {
			return l, nil, cli.Exit(fmt.Sprintf("hpcd: --account %q: write USER=ACCOUNT[,ACCOUNT...]", a), 2)
		}
		accounts[strings.TrimSpace(user)] = append(accounts[strings.TrimSpace(user)], accts...)
	}
	return l, accounts, nil
}
