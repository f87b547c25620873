package exec

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DefaultPidsShare is the share of the host's pid space (kernel.pid_max)
// one job may use when its Spec sets no pids limit. Found as: the fixed
// 16,384 was half of a 32,768 pid_max, so two fork bombs stopped the host.
// An eighth leaves room for several runaway jobs and the system itself.
const DefaultPidsShare = 0.125

// minJobPids keeps the share usable on hosts with a tiny pid_max.
const minJobPids = 256

// pidsPerJob is the pids limit of a job: share of pid_max.
func pidsPerJob(share float64) (int64, error) {
	if share <= 0 || share > 1 {
		return 0, fmt.Errorf("pids share %v: want a fraction in (0, 1]", share)
	}
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, fmt.Errorf("read pid_max: %w", err)
	}
	max, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read pid_max: %w", err)
	}
	return pidsFor(max, share), nil
}

func pidsFor(pidMax int64, share float64) int64 {
	return max(int64(float64(pidMax)*share), minJobPids)
}
