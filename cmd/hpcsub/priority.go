package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"
)

func priorityCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "priority",
		Usage:     "show why pending jobs are in the order they are: priority, age and fair-share factors (like sprio)",
		ArgsUsage: "[ID]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}},
		Action:    e.priority,
	}
}

func (e *env) priority(c *cli.Context) error {
	var id uint64
	switch c.NArg() {
	case 0:
	case 1:
		var err error
		if id, err = parseID("priority", c.Args().First()); err != nil {
			return err
		}
	default:
		return usagef("priority", "one job ID at a time, or none for every pending job")
	}
	cl, err := e.client(c)
	if err != nil {
		return err
	}
	ctx, cancel := e.request()
	defer cancel()
	rep, err := cl.Priority(ctx, id)
	if err != nil {
		if id != 0 {
			return jobError(cl, id, err)
		}
		return explain(cl, err)
	}
	if c.Bool("json") {
		return writeJSON(e.stdout, rep)
	}
	w := rep.Weights
	fmt.Fprintf(e.stdout, "weights: priority %g, age %g (full at %s), fair-share %g (usage half-life %s)\n",
		w.Priority, w.Age, w.AgeMax, w.FairShare, w.HalfLife)
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
	tw := newTable(e.stdout)
	// Each column is weight x factor, so the columns add up to TOTAL.
	row(tw, "JOBID", "USER", "ACCOUNT", "TOTAL", "PRIORITY", "AGE", "FAIRSHARE")
	for _, j := range rep.Jobs {
		f := j.Factors
		row(tw, strconv.FormatUint(j.ID, 10), dashIfEmpty(j.User), dashIfEmpty(j.Account), num(f.Total),
			num(w.Priority*f.Priority), num(w.Age*f.Age), num(w.FairShare*f.FairShare))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Accounts) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	tw = newTable(e.stdout)
	row(tw, "ACCOUNT", "SHARES", "NORM-SHARES", "USAGE-CPU-HOURS", "NORM-USAGE", "FAIRSHARE")
	for _, a := range rep.Accounts {
		row(tw, a.Account, strconv.FormatFloat(a.Shares, 'g', -1, 64), strconv.FormatFloat(a.NormShares, 'f', 3, 64),
			strconv.FormatFloat(a.Usage/3600, 'f', 2, 64), strconv.FormatFloat(a.NormUsage, 'f', 3, 64), strconv.FormatFloat(a.FairShare, 'f', 3, 64))
	}
	return tw.Flush()
}
