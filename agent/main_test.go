package agent

import (
	"os"
	"testing"

	"github.com/hpc-sched/hpc/exec"
)

// TestMain lets the test binary serve as the executor's shim, so tests
// can launch real jobs through Local.
func TestMain(m *testing.M) {
	if exec.ShimMain() {
		return
	}
	os.Exit(m.Run())
}
