package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/hpc-sched/hpc/api"
)

func priorityCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "priority",
		Usage:     "show why pending jobs are in the order they are: priority, age and fair-share factors (like sprio)",
		ArgsUsage: "[ID]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "only pending jobs of user `U` (sprio -u)"},
			&cli.StringFlag{Name: "account", Aliases: []string{"A"}, Usage: "only pending jobs charged to account `A`"},
			&cli.BoolFlag{Name: "long", Aliases: []string{"l"}, Usage: "also show each factor's raw value in [0,1] (sprio -l)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: e.priority,
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
	rep = filterPriority(rep, c.String("user"), c.String("account"))
	if c.Bool("json") {
		return writeJSON(e.stdout, rep)
	}
	w := rep.Weights
	gpu := ""
	if w.GPUBilling > 0 {
		gpu = fmt.Sprintf("; a GPU-hour counts %g CPU-hours", w.GPUBilling)
	}
	fmt.Fprintf(e.stdout, "weights: priority %g, age %g (full at %s), fair-share %g (usage half-life %s%s)\n",
		w.Priority, w.Age, w.AgeMax, w.FairShare, w.HalfLife, gpu)
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
	tw := newTable(e.stdout)
	// Each column is weight x factor, so the columns add up to TOTAL.
	long := c.Bool("long")
	header := []string{"JOBID", "USER", "ACCOUNT", "TOTAL", "PRIORITY", "AGE", "FAIRSHARE"}
	if long {
		header = append(header, "JOB-PRIO", "PRIO-FACTOR", "AGE-FACTOR", "FS-FACTOR")
	}
	row(tw, header...)
	raw := func(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }
	for _, j := range rep.Jobs {
		f := j.Factors
		cols := []string{strconv.FormatUint(j.ID, 10), dashIfEmpty(j.User), dashIfEmpty(j.Account), num(f.Total),
			num(w.Priority * f.Priority), num(w.Age * f.Age), num(w.FairShare * f.FairShare)}
		if long {
			cols = append(cols, strconv.Itoa(j.Priority), raw(f.Priority), raw(f.Age), raw(f.FairShare))
		}
		row(tw, cols...)
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

// filterPriority keeps the jobs of user and account (empty: any), and the
// accounts of the jobs kept; with no filter it is rep as it is.
func filterPriority(rep api.PriorityReport, user, account string) api.PriorityReport {
	if user == "" && account == "" {
		return rep
	}
	jobs := rep.Jobs[:0:0]
	kept := map[string]bool{}
	for _, j := range rep.Jobs {
		if (user == "" || j.User == user) && (account == "" || j.Account == account) {
			jobs = append(jobs, j)
			kept[j.Account] = true
		}
	}
	accounts := rep.Accounts[:0:0]
	for _, a := range rep.Accounts {
		if kept[a.Account] || a.Account == account {
			accounts = append(accounts, a)
		}
	}
	rep.Jobs, rep.Accounts = jobs, accounts
	return rep
}
