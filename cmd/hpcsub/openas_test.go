package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// Found as: when root ran `hpcsub logs ID`, a symlink the job's owner had
// planted at the output path was followed and its target (/root/x)
// printed. Root now reads a job's output as the job's user, and follows
// no link at the output path.
func TestLogsAsRootReadsAsTheJobsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: root reads another user's output")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "hpc-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	secret := writeFile(t, dir, "secret", "root's secret\n") // 0644 by writeFile: make it root's only
	os.Chmod(secret, 0o600)
	own := writeFile(t, dir, "own.out", "nobody's output\n")
	os.Chmod(own, 0o600)
	os.Chown(own, nobody, nobody)
	if err := os.Symlink(secret, filepath.Join(dir, "link.out")); err != nil {
		t.Fatal(err)
	}
	os.Lchown(filepath.Join(dir, "link.out"), nobody, nobody)

	f := newFakeServer(t)
	f.add(
		api.Job{ID: 7, UID: nobody, State: api.StateCompleted, Workdir: dir, Output: filepath.Join(dir, "link.out")},
		api.Job{ID: 8, UID: nobody, State: api.StateCompleted, Workdir: dir, Output: secret},
		api.Job{ID: 9, UID: nobody, State: api.StateCompleted, Workdir: dir, Output: own},
	)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string // contained
	}{
		{[]string{"logs", "7"}, 1, "", "is a symbolic link"},
		{[]string{"logs", "-f", "7"}, 1, "", "is a symbolic link"},
		{[]string{"logs", "8"}, 1, "", "permission denied"},
		{[]string{"logs", "9"}, 0, "nobody's output\n", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
			if strings.Contains(r.stdout, "secret") {
				t.Errorf("root's file was printed: %s", fmt.Sprint(r.stdout))
			}
		})
	}
}
