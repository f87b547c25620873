package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CRIU is a checked criu binary: the transparent mode's driver. Dump and
// restore run it as root (the agent's user); its images are the job's
// whole process tree, so they are kept where the job's user cannot write
// (ImageDir), or a user could have root restore a forged tree.
type CRIU struct {
	Path    string
	Version string // e.g. "4.1.1"
}

// MinCRIU is the oldest CRIU that works on kernels >= 6.13 (bookworm's 3.17
// fails with "vdso: Unexpected rt vDSO area bounds").
var MinCRIU = [2]int{4, 1}

// ErrNoCRIU: no working CRIU >= 4.1 on this node.
var ErrNoCRIU = errors.New("no working CRIU >= 4.1 on this node")

// criuCandidates are tried in order: $HPC_CRIU, criu on PATH, and where
// scripts/build-criu.sh puts its build.
func criuCandidates() []string {
	var out []string
	if p := os.Getenv("HPC_CRIU"); p != "" {
		out = append(out, p)
	}
	if p, err := osexec.LookPath("criu"); err == nil {
		out = append(out, p)
	}
	return append(out, "/var/cache/hpc-criu/criu-4.1.1/criu/criu")
}

var versionRE = regexp.MustCompile(`Version:\s*(\d+)\.(\d+)(\.\d+)?`)

// FindCRIU looks for a CRIU >= 4.1 that passes `criu check` here. The error
// says what was tried and why each failed, for the node's log and for tests
// that skip.
func FindCRIU(ctx context.Context) (*CRIU, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: CRIU needs root", ErrNoCRIU)
	}
	var why []string
	for _, p := range criuCandidates() {
		c, err := checkCRIU(ctx, p)
		if err == nil {
			return c, nil
		}
		why = append(why, err.Error())
	}
	return nil, fmt.Errorf("%w (%s); scripts/build-criu.sh builds one", ErrNoCRIU, strings.Join(why, "; "))
}

func checkCRIU(ctx context.Context, path string) (*CRIU, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := osexec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("%s: no version in %q", path, bytes.TrimSpace(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	version := fmt.Sprintf("%d.%d%s", major, minor, m[3])
	if major < MinCRIU[0] || (major == MinCRIU[0] && minor < MinCRIU[1]) {
		return nil, fmt.Errorf("%s: version %s is older than %d.%d", path, version, MinCRIU[0], MinCRIU[1])
	}
	if out, err := osexec.CommandContext(ctx, path, "check").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: criu check: %v: %s", path, err, lastLine(out))
	}
	return &CRIU{Path: path, Version: version}, nil
}

// ImageDir is where the CRIU images of the job whose checkpoint directory
// is ckptDir live: beside it, in the checkpoint root that only root may
// write.
func ImageDir(ckptDir string) string {
	return filepath.Clean(ckptDir) + ".criu"
}

// HasImage reports whether dir holds a complete dump.
func HasImage(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "inventory.img"))
	return err == nil
}

// Dump checkpoints the process tree rooted at pid into dir. The new
// images are written beside the last good ones and replace them only once
// complete, so a failed dump leaves the previous checkpoint usable. With
// leaveRunning the tree goes on running (a periodic checkpoint); without,
// CRIU kills it once dumped (a stop).
func (c *CRIU) Dump(ctx context.Context, pid int, dir string, leaveRunning bool) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return fmt.Errorf("criu dump: %w", err)
	}
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("criu dump: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("criu dump: %w", err)
	}
	args := []string{"dump", "--tree", strconv.Itoa(pid), "--images-dir", tmp,
		"--log-file", "dump.log", "-v2", "--file-locks", "--manage-cgroups=ignore"}
	if leaveRunning {
		args = append(args, "--leave-running")
	}
	if out, err := osexec.CommandContext(ctx, c.Path, args...).CombinedOutput(); err != nil {
		reason := logTail(filepath.Join(tmp, "dump.log"), out)
		return fmt.Errorf("criu dump of pid %d: %v: %s", pid, err, reason)
	}
	old := dir + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("criu dump: keep the last image: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(old, dir)
		return fmt.Errorf("criu dump: install the new image: %w", err)
	}
	_ = os.RemoveAll(old)
	return nil
}

// RestoreArgs is the command line that restores the tree dumped in dir,
// detached: once restored, criu exits and the tree is re-parented to the
// nearest child subreaper (the job's shim), which supervises it as if it
// had started it. The tree's pid is written to pidFile. Cgroups are left
// to the caller: criu runs inside the job's new cgroup and the restored
// processes stay there.
func (c *CRIU) RestoreArgs(dir, pidFile string) []string {
	return []string{c.Path, "restore", "--images-dir", dir, "--restore-detached",
		"--pidfile", pidFile, "--log-file", "restore.log", "-v2", "--file-locks",
		"--manage-cgroups=ignore"}
}

// logTail gives the last error lines of a CRIU log, or its output.
func logTail(path string, out []byte) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return lastLine(out)
	}
	var errs []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	if len(errs) == 0 {
		return lastLine(b)
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	return strings.Join(errs, " | ")
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
