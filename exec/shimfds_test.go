package exec

import (
	"context"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestShimGetsNoInheritedDescriptors: a descriptor the daemon inherited
// without close-on-exec must not reach the shim, which outlives the daemon
// for as long as its job runs. Found when land.sh's flocked fd 9 reached
// the shim of a test's leftover job through go test and hpcd: every other
// land.sh waited on the lock until that job's sleep ended.
func TestShimGetsNoInheritedDescriptors(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const leaked = 78
	if err := unix.Dup3(fd, leaked, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leaked)
	s := te.spec("sleep 300")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Cancel("test over"); err != nil {
			t.Error(err)
		}
		wait(t, h)
	}()
	if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", h.shim.PID, leaked)); err == nil {
		t.Errorf("the shim (pid %d) holds fd %d of the daemon", h.shim.PID, leaked)
	}
}
