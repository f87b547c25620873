package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources"
	"github.com/urfave/cli/v2"
)

func nodesCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "nodes",
		Usage:  "list the cluster's nodes",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the nodes as a JSON array"}},
		Action: e.nodes,
	}
}

func (e *env) nodes(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("nodes", "unexpected argument %q", c.Args().First())
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	list, err := cl.Nodes(ctx)
	if err != nil {
		return explain(cl, err)
	}
	sort.Slice(list, func(a, b int) bool { return list[a].Name < list[b].Name })
	if c.Bool("json") {
		return writeJSON(e.stdout, list)
	}
	tw := newTable(e.stdout)
	row(tw, "NAME", "STATE", "CPUS", "MEMORY", "GPUS", "FEATURES", "HEARTBEAT", "VERSION", "ISOLATION", "CHECKPOINT", "REASON")
	now := time.Now()
	for _, n := range list {
		row(tw, n.Name, string(n.State),
			fmt.Sprintf("%d/%d", n.CPUsUsed, n.CPUs),
			resources.FormatBytes(n.MemoryUsed)+"/"+resources.FormatBytes(n.Memory),
			gpuSummary(n.GPUs), dashIfEmpty(strings.Join(n.Features, ",")), heartbeat(now, n.LastContact),
			dashIfEmpty(n.AgentVersion), dashIfEmpty(n.Isolation), dashIfEmpty(strings.Join(n.Checkpoint, ",")), dashIfEmpty(nodeReason(n)))
	}
	return tw.Flush()
}

// heartbeat is the HEARTBEAT column: how long ago the agent was heard from.
func heartbeat(now, last time.Time) string {
	if last.IsZero() {
		return "-"
	}
	return now.Sub(last).Round(time.Second).String() + " ago"
}

// nodeReason is the REASON column: the node's, then each GPU out of service.
func nodeReason(n api.Node) string {
	parts := []string{}
	if n.Reason != "" {
		parts = append(parts, n.Reason)
	}
	for _, g := range n.GPUs {
		if g.OutOfService != "" {
			parts = append(parts, fmt.Sprintf("GPU %d %s", g.Index, g.OutOfService))
		}
	}
	return strings.Join(parts, "; ")
}

// gpuSummary is the GPUS column: "used/total model", e.g. "2/4 H100".
func gpuSummary(gpus []api.GPU) string {
	if len(gpus) == 0 {
		return "-"
	}
	used := 0
	var models []string
	seen := map[string]bool{}
	for _, g := range gpus {
		if g.Used {
			used++
		}
		// NVML names start with the vendor; the rest is what tells nodes apart.
		m := strings.TrimPrefix(g.Model, "NVIDIA ")
		if m != "" && !seen[m] {
			seen[m] = true
			models = append(models, m)
		}
	}
	s := fmt.Sprintf("%d/%d", used, len(gpus))
	if len(models) > 0 {
		s += " " + strings.Join(models, "+")
	}
	var out []string
	for _, g := range gpus {
		if g.OutOfService != "" {
			out = append(out, fmt.Sprint(g.Index))
		}
	}
	if len(out) > 0 {
		s += " (out: " + strings.Join(out, ",") + ")"
	}
	return s
}

func nodeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "node",
		Usage:     "drain, resume or remove a node (admins)",
		ArgsUsage: "drain|resume|remove NAME",
		Subcommands: []*cli.Command{
			{
				Name:      "drain",
				Usage:     "stop new work on a node; running jobs finish (or are requeued with --requeue)",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "reason", Usage: "why, shown in `hpcsub nodes` (required)"},
					&cli.BoolFlag{Name: "requeue", Usage: "checkpoint and requeue the node's running jobs instead of letting them finish"},
					&cli.IntFlag{Name: "gpu", Value: -1, Usage: "take only this GPU (its index) out of service"},
				},
				Action: e.drain,
			},
			{
				Name:      "resume",
				Usage:     "return a drained or draining node to service",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.IntFlag{Name: "gpu", Value: -1, Usage: "return only this GPU (its index) to service"}},
				Action:    e.resume,
			},
			{
				Name:      "remove",
				Usage:     "forget a DRAINED node and revoke its agent's certificate",
				ArgsUsage: "NAME",
				Action:    e.removeNode,
			},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("node", "unknown node command %q: want drain, resume or remove", c.Args().First())
			}
			return usagef("node", "missing node command: drain, resume or remove")
		},
	}
}

// nodeName reads the single NAME argument of node drain/resume/remove.
func nodeName(cmd string, c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", usagef(cmd, "missing node NAME")
	case 1:
		return c.Args().First(), nil
	}
	return "", usagef(cmd, "one node NAME at a time, got %d", c.NArg())
}

func (e *env) drain(c *cli.Context) error {
	name, err := nodeName("node drain", c)
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(c.String("reason"))
	if reason == "" {
		return usagef("node drain", "missing --reason TEXT: say why, for the users who see the node drained")
	}
	req := api.DrainRequest{Reason: reason, Requeue: c.Bool("requeue")}
	if gpu := c.Int("gpu"); gpu >= 0 {
		if req.Requeue {
			return usagef("node drain", "--requeue drains the whole node: leave it out with --gpu")
		}
		req.GPU = &gpu
	}
	// Flags are checked before connecting: a usage mistake is the same
	// answer whether or not the server is up.
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	n, err := cl.Drain(ctx, name, req)
	if err != nil {
		return nodeError(cl, name, err)
	}
	if req.GPU != nil {
		fmt.Fprintf(e.stdout, "node %s GPU %d out of service\n", name, *req.GPU)
		return nil
	}
	fmt.Fprintf(e.stdout, "node %s %s\n", name, stateOr(string(n.State), "DRAINING"))
	return nil
}

func (e *env) resume(c *cli.Context) error {
	name, err := nodeName("node resume", c)
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	if gpu := c.Int("gpu"); gpu >= 0 {
		if _, err := cl.ResumeGPU(ctx, name, gpu); err != nil {
			return nodeError(cl, name, err)
		}
		fmt.Fprintf(e.stdout, "node %s GPU %d in service\n", name, gpu)
		return nil
	}
	n, err := cl.Resume(ctx, name)
	if err != nil {
		return nodeError(cl, name, err)
	}
	fmt.Fprintf(e.stdout, "node %s %s\n", name, stateOr(string(n.State), "resumed"))
	return nil
}

func (e *env) removeNode(c *cli.Context) error {
	name, err := nodeName("node remove", c)
	if err != nil {
		return err
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	if err := cl.RemoveNode(ctx, name); err != nil {
		return nodeError(cl, name, err)
	}
	fmt.Fprintf(e.stdout, "node %s removed; its agent's certificate is revoked\n", name)
	return nil
}

// stateOr covers a server that acknowledges without returning the node.
func stateOr(state, fallback string) string {
	if state == "" {
		return fallback
	}
	return state
}

func nodeError(cl *api.Client, name string, err error) error {
	return about(cl, "node "+name, err)
}
