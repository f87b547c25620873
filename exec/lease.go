package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// leaseFile's modification time is when the agent last had the server's
// word that the node is alive (Spec.FenceAfter). A shim whose agent died
// (kill -9) keeps the job running for a later agent to adopt; the lease
// stops it before the server, having marked the node DOWN, starts the job
// again elsewhere.
const leaseFile = "lease"

// createLease writes the lease of a job launched with a FenceAfter, valid
// from now: the launch itself came from the server.
func createLease(dir string) error {
	if err := writeFileAtomic(filepath.Join(dir, leaseFile), nil, 0o600, false); err != nil {
		return fmt.Errorf("create lease: %w", err)
	}
	return nil
}

// RenewLease extends the lease of a job to at, the time the agent's last
// successful exchange with the server was sent (not when its answer came:
// the server counts the node alive from the request). Jobs without a lease
// are left alone.
func (e *Executor) RenewLease(jobID uint64, at time.Time) error {
	err := os.Chtimes(filepath.Join(e.jobDir(jobID), leaseFile), at, at)
	if errors.Is(err, os.ErrNotExist) {
		if e.sp != nil && e.sp.job(jobID) != nil {
			if err := e.sp.renew(jobID, at); err != nil {
				return fmt.Errorf("job %d: renew lease: %w", jobID, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %d: renew lease: %w", jobID, err)
	}
	return nil
}

// leaseAge is how long ago the lease was last renewed; ok is false when it
// cannot be read (the state directory released under the shim): a lease
// that cannot be read never fences.
func leaseAge(dir string) (time.Duration, bool) {
	fi, err := os.Stat(filepath.Join(dir, leaseFile))
	if err != nil {
		return 0, false
	}
	return time.Since(fi.ModTime()), true
}

// leaseTick is how often the shim checks the lease: often enough that the
// kill comes well inside the heartbeat of margin the fence timeout leaves.
func leaseTick(fenceAfter time.Duration) time.Duration {
	return min(max(fenceAfter/10, 10*time.Millisecond), time.Second)
}
