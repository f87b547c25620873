package main

import (
	"io"
	"text/tabwriter"
)

// The history listings (hpcsub history, history -j) print either a JSON
// array of jobs or a table of historyRow lines under one header.

// beginHistory opens a history listing: the JSON array's "[" or the
// table's header, whose columns are historyRow's.
func beginHistory(out io.Writer, asJSON bool) *tabwriter.Writer {
	tw := newTable(out)
	if asJSON {
		io.WriteString(out, "[")
	} else {
		row(tw, "JOBID", "NAME", "USER", "ACCOUNT", "STATE", "EXIT", "RUNS", "ELAPSED", "CPU", "MAXMEM", "END")
	}
	return tw
}

// endHistory closes what beginHistory opened. The caller flushes out, which
// reports a failed write of it.
func endHistory(out io.Writer, tw *tabwriter.Writer, asJSON bool) error {
	if asJSON {
		io.WriteString(out, "]\n")
		return nil
	}
	return tw.Flush()
}
