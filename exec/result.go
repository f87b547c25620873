package exec

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// exitFacts is everything that decides a job's outcome.
type exitFacts struct {
	status       unix.WaitStatus
	timedOut     bool
	cancelled    bool
	cancelReason string
	oomKills     uint64
	spec         Spec
	isolation    Isolation
	startErr     string // the init stage's reason for not running the command
}

// classify turns exit facts into an Outcome (times and usage aside). The
// order of precedence: a cancel, then the walltime, then an OOM kill (as
// Slurm, any OOM kill in the job marks it, since the main process may only
// report a killed child), then the exit status.
func classify(f exitFacts) Outcome {
	var o Outcome
	var how string
	switch {
	case f.status.Signaled():
		sig := f.status.Signal()
		o.ExitCode = 128 + int(sig)
		o.Signal = signalName(sig)
		how = "killed by signal " + o.Signal
	default:
		o.ExitCode = f.status.ExitStatus()
		how = fmt.Sprintf("exit code %d", o.ExitCode)
	}
	switch {
	case f.cancelled:
		o.State = StateCancelled
		o.Reason = "cancelled"
		if f.cancelReason != "" {
			o.Reason += ": " + f.cancelReason
		}
	case f.timedOut:
		o.State = StateTimeout
		o.Reason = fmt.Sprintf("walltime %s exceeded (%s)", f.spec.Walltime, how)
	case f.oomKills > 0:
		o.State = StateOutOfMemory
		o.Reason = fmt.Sprintf("killed by the kernel OOM killer at memory limit %s (%s)", formatBytes(f.spec.Memory), how)
	case o.ExitCode == 0 && !f.status.Signaled():
		o.State = StateCompleted
	default:
		o.State = StateFailed
		o.Reason = how
		if f.startErr != "" {
			o.Reason = "cannot run the command: " + oneLine(f.startErr)
		}
		if f.isolation == IsolationNone && f.spec.Memory > 0 {
			o.Reason += "; without cgroups an out-of-memory end cannot be detected reliably (memory was limited by RLIMIT_DATA per process)"
		}
	}
	return o
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// formatBytes renders a limit the way users write it in job files.
func formatBytes(n int64) string {
	if n <= 0 {
		return "none"
	}
	for _, u := range []struct {
		unit string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.unit)
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dB", n)
}
