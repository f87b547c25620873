package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// newTable writes aligned columns; the caller must Flush.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// parseID reads a job id argument; a bad one is a usage error.
func parseID(cmd, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef(cmd, "invalid job id %q: want a positive number", s)
	}
	return id, nil
}

// formatElapsed prints a duration the way squeue does: M:SS, H:MM:SS or
// D-HH:MM:SS.
func formatElapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	m, s := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, s)
	case h > 0:
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// elapsed is how long a job has run (so far, if it still runs).
func elapsed(j api.Job, now time.Time) time.Duration {
	if j.StartTime == nil {
		return 0
	}
	end := now
	if j.EndTime != nil {
		end = *j.EndTime
	}
	return end.Sub(*j.StartTime)
}

// formatTime prints an absolute time in local time; "-" when unset.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// formatSoon prints a near time compactly: "12:30" today, else "Jan 02 12:30".
func formatSoon(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Jan 02 15:04")
}

// pendingReason is the REASON column: why a job waits (with its reserved
// start, when the scheduler has one) or why it ended.
func pendingReason(j api.Job, now time.Time) string {
	r := j.Reason
	if j.ReservedStart != nil && !api.Terminal(j.State) && j.State != api.StateRunning {
		start := "(start ~" + formatSoon(*j.ReservedStart, now) + ")"
		if r == "" {
			return start
		}
		return r + " " + start
	}
	return r
}

// nodeList is the NODES column: allocated nodes, or how many are wanted.
func nodeList(j api.Job) string {
	if len(j.Nodes) > 0 {
		return strings.Join(j.Nodes, ",")
	}
	if j.NodesWanted > 0 {
		return strconv.Itoa(j.NodesWanted)
	}
	return "-"
}

// gpuList prints the allocated GPU ids per node: "n1:0,1 n2:2,3".
func gpuList(gpus map[string][]int) string {
	if len(gpus) == 0 {
		return ""
	}
	nodes := make([]string, 0, len(gpus))
	for n, ids := range gpus {
		if len(ids) > 0 { // a CPU-only allocation may list the node with no GPUs
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ids := make([]string, len(gpus[n]))
		for i, g := range gpus[n] {
			ids[i] = strconv.Itoa(g)
		}
		parts = append(parts, n+":"+strings.Join(ids, ","))
	}
	return strings.Join(parts, " ")
}

// jobName shows an array element as name[index].
func jobName(j api.Job) string {
	if j.ArrayIndex != nil {
		return fmt.Sprintf("%s[%d]", j.Name, *j.ArrayIndex)
	}
	return j.Name
}

// dashIfEmpty keeps table columns aligned and key: value lines readable.
func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// signals maps the names the server reports to numbers for 128+signo.
var signals = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGILL": syscall.SIGILL, "SIGTRAP": syscall.SIGTRAP, "SIGABRT": syscall.SIGABRT,
	"SIGBUS": syscall.SIGBUS, "SIGFPE": syscall.SIGFPE, "SIGKILL": syscall.SIGKILL,
	"SIGUSR1": syscall.SIGUSR1, "SIGSEGV": syscall.SIGSEGV, "SIGUSR2": syscall.SIGUSR2,
	"SIGPIPE": syscall.SIGPIPE, "SIGALRM": syscall.SIGALRM, "SIGTERM": syscall.SIGTERM,
	"SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ, "SIGSYS": syscall.SIGSYS,
}

// signalNumber accepts "SIGKILL", "KILL" or "9"; an unknown name gives 0.
func signalNumber(name string) int {
	name = strings.ToUpper(strings.TrimSpace(name))
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 128 {
		return n
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return int(signals[name])
}

// jobExitStatus is what `submit --wait` exits with for a terminal job:
// COMPLETED 0; FAILED its exit code, or 128+signo when killed by a signal;
// TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL the exit code if non-zero,
// else 1 — so a script sees failure for every state but COMPLETED.
func jobExitStatus(j api.Job) int {
	code := 0
	if j.ExitCode != nil && *j.ExitCode > 0 {
		code = *j.ExitCode & 0xff
	}
	switch j.State {
	case api.StateCompleted:
		return 0
	case api.StateFailed:
		if n := signalNumber(j.Signal); j.Signal != "" && n > 0 {
			return 128 + n
		}
	}
	if code == 0 {
		return 1
	}
	return code
}

// finalLine is the one line `submit --wait` prints when the job ends:
// "job 42 TIMEOUT: walltime 1s exceeded".
func finalLine(j api.Job) string {
	line := fmt.Sprintf("job %d %s", j.ID, j.State)
	switch {
	case j.Reason != "":
		return line + ": " + j.Reason
	case j.Signal != "":
		return line + ": killed by " + j.Signal
	case j.ExitCode != nil && *j.ExitCode != 0:
		return fmt.Sprintf("%s: exit code %d", line, *j.ExitCode)
	}
	return line
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
