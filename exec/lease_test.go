package exec

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLeaseFence: a job whose lease is no longer renewed (its agent died)
// is killed by its shim, with its whole tree, and its outcome says it was
// fenced, a host failure; a job whose lease keeps being renewed runs on.
func TestLeaseFence(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	const fenceAfter = 400 * time.Millisecond

	abandoned := te.spec("sleep 300 & sleep 300")
	abandoned.FenceAfter = fenceAfter
	renewed := te.spec("sleep 300 & sleep 300")
	renewed.FenceAfter = fenceAfter
	ha, err := te.Launch(context.Background(), abandoned)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := te.Launch(context.Background(), renewed)
	if err != nil {
		t.Fatal(err)
	}

	// Renew only the second job's lease, as an agent that reaches the
	// server would, until the first job has been fenced (and a while
	// longer: several fence timeouts in all).
	deadline := time.Now().Add(20 * time.Second)
	renewedFor := time.Duration(0)
	for start := time.Now(); ha.running() || renewedFor < 3*fenceAfter; renewedFor = time.Since(start) {
		if time.Now().After(deadline) {
			t.Fatal("the job whose lease ran out is still running")
		}
		if err := te.RenewLease(renewed.JobID, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := wait(t, ha)
	if o.State != StateFailed || !o.HostFailure || !o.Fenced || !strings.Contains(o.Reason, "self-fenced") {
		t.Errorf("fenced job's outcome %+v, want FAILED, a host failure, fenced, reason naming self-fencing", o)
	}
	if p := jobProcesses(abandoned.JobID); len(p) > 0 {
		t.Errorf("fenced job's processes left: %v", p)
	}
	if !hr.running() || len(jobProcesses(renewed.JobID)) < 2 {
		t.Fatalf("the job whose lease was renewed for %s stopped", renewedFor)
	}
	if err := hr.Cancel("test over"); err != nil {
		t.Fatal(err)
	}
	if o := wait(t, hr); o.State != StateCancelled || o.Fenced || o.HostFailure {
		t.Errorf("renewed job's outcome %+v, want CANCELLED, not fenced", o)
	}
	// A job without a lease has no lease file: renewing it is a no-op.
	if err := te.RenewLease(abandoned.JobID+1_000_000, time.Now()); err != nil {
		t.Errorf("renewing a job without a lease: %v", err)
	}
}
