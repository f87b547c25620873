package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/api"
)

func loginCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "fetch your token over this node's local socket (server or agent) for `hpcsub --addr https://...`",
		Description: "The server (or the node's agent) learns your uid from the socket itself, so no password\n" +
			"is asked. The token and the cluster's CA are stored in ~/.config/hpc/credentials.json (0600).",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("login", "unexpected argument %q", c.Args().First())
			}
			cl, err := e.client(c)
			if err != nil {
				return err
			}
			ctx, cancel := e.request()
			defer cancel()
			t, err := cl.Token(ctx)
			if err != nil {
				return about(cl, "login", err)
			}
			path, err := api.SaveCredentials(t)
			if err != nil {
				return fmt.Errorf("hpcsub login: store the token: %w", err)
			}
			fmt.Fprintf(e.stdout, "token for %s stored in %s\n", t.User, path)
			for _, s := range t.Servers {
				fmt.Fprintf(e.stdout, "use it with: hpcsub --addr %s ...\n", s)
			}
			return nil
		},
	}
}
