package exec

import (
	"os"
	"testing"
)

// TestAdoptInterruptedLaunch: an agent killed in the middle of Launch
// leaves a state directory behind; the next agent adopts it. When no shim
// was recorded yet, the shim was never released, so nothing of the job ran
// and the outcome must say so (NeverStarted), or the server would end a
// job that never ran FAILED or NODE_FAIL (found with kill -9 of hpcd dev
// during a stream of submits).
func TestAdoptInterruptedLaunch(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	tests := []struct {
		name         string
		withShim     bool // a shim was recorded (and has died since)
		neverStarted bool
	}{
		{"killed before the shim was recorded", false, true},
		{"shim recorded, then died without a result", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := te.spec("echo must-not-run")
			// What Launch writes before it starts the shim.
			if err := os.Mkdir(te.jobDir(s.JobID), 0o711); err != nil {
				t.Fatal(err)
			}
			rec := record{Spec: s, Isolation: te.iso, CgroupParent: te.cfg.CgroupParent, V2Mount: te.v2mount, KillGrace: te.cfg.KillGrace}
			if err := writeVolatileJSON(te.jobDir(s.JobID)+"/"+recordFile, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := te.drv.create(s.JobID, Limits(s)); err != nil {
				t.Fatal(err)
			}
			if tt.withShim {
				// A process that has exited: its identity no longer matches.
				if err := writeVolatileJSON(te.jobDir(s.JobID)+"/"+shimPIDFile, procIdentity{PID: os.Getpid(), Start: 1}); err != nil {
					t.Fatal(err)
				}
			}
			h, err := te.Adopt(s.JobID)
			if err != nil {
				t.Fatal(err)
			}
			o := wait(t, h)
			if o.NeverStarted != tt.neverStarted || !o.HostFailure {
				t.Errorf("outcome %+v: NeverStarted %v, want %v, and a host failure", o, o.NeverStarted, tt.neverStarted)
			}
			if _, err := os.Stat(s.Stdout); err == nil {
				t.Errorf("the job ran: %s exists", s.Stdout)
			}
		})
	}
}
