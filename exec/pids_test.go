package exec

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestPidsFor(t *testing.T) {
	tests := []struct {
		pidMax int64
		share  float64
		want   int64
	}{
		{32768, DefaultPidsShare, 4096}, // two runaway jobs leave three quarters of the host
		{4194304, DefaultPidsShare, 524288},
		{32768, 0.5, 16384},
		{1000, DefaultPidsShare, minJobPids},
	}
	for _, tt := range tests {
		if got := pidsFor(tt.pidMax, tt.share); got != tt.want {
			t.Errorf("pidsFor(%d, %v) = %d, want %d", tt.pidMax, tt.share, got, tt.want)
		}
	}
	if _, err := pidsPerJob(1.5); err == nil {
		t.Error("a share over 1 was accepted")
	}
}

// Found as: a job's pids limit (16,384) was half the host's pid space
// (32,768). A job without its own limit now gets the configured share.
func TestJobPidsLimitIsShareOfPidMax(t *testing.T) {
	te := newTestExecutor(t, "")
	var dir string
	switch {
	case te.Isolation() == IsolationV2 && te.v2mount == v2DefaultMount:
		dir = v2DefaultMount
	case te.Isolation() == IsolationV1:
		dir = v1Root + "/pids"
	default:
		t.Skipf("no pids cgroup with isolation %s", te.Isolation())
	}
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	s := te.spec("sleep 300")
	h, err := te.Launch(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cancel("test over")
	got := strings.TrimSpace(readFile(t, fmt.Sprintf("%s/%s/job-%d/pids.max", dir, te.parent, s.JobID)))
	if want := strconv.FormatInt(pidsFor(pidMax, DefaultPidsShare), 10); got != want {
		t.Fatalf("pids.max %s, want %s (an eighth of pid_max %d)", got, want, pidMax)
	}
}
