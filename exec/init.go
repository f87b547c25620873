package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The init stage is the second re-execution of the agent binary: the shim
// starts it with the job's credentials, in a new session, already inside the
// job's cgroup. It reads an initConfig from fd 3, opens the output files as
// the user, enters the working directory, applies rlimits (fallback mode) and
// execve()s the job. Any failure before the exec is written to fd 4, which is
// close-on-exec, so the shim reads EOF alone when the exec succeeded.

// Exit codes of the init stage when it cannot exec, the shells' convention.
const (
	exitSetupFailed   = 1
	exitNotExecutable = 126
	exitNotFound      = 127
)

type initConfig struct {
	Argv      []string `json:"argv"`
	Env       []string `json:"env"`
	Dir       string   `json:"dir"`
	Stdout    string   `json:"stdout"`
	Stderr    string   `json:"stderr"`
	DataLimit uint64   `json:"data_limit,omitempty"` // RLIMIT_DATA bytes; 0 = none
	Umask     uint32   `json:"umask"`
	// CheckpointDir is created (as the user) when set.
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
}

func runInit() int {
	unix.CloseOnExec(4)
	errPipe := os.NewFile(4, "init-errors")
	fail := func(code int, format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		fmt.Fprintf(errPipe, "%s", msg)
		fmt.Fprintf(os.Stderr, "hpc: %s\n", msg) // fd 2 is the job's stderr file once opened
		return code
	}
	var cfg initConfig
	cfgFile := os.NewFile(3, "init-config")
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		return fail(exitSetupFailed, "read job configuration: %v", err)
	}
	cfgFile.Close()
	if len(cfg.Argv) == 0 {
		return fail(exitSetupFailed, "empty command")
	}

	// The submitter's umask, before any file is created: outputs are as
	// private as the user's own files, and so is whatever the job writes.
	unix.Umask(int(cfg.Umask & 0o777))

	// The checkpoint directory is made by the user too, so it is theirs.
	if cfg.CheckpointDir != "" {
		if err := os.MkdirAll(cfg.CheckpointDir, 0o777); err != nil {
			return fail(exitSetupFailed, "create checkpoint directory: %v", err)
		}
	}

	// Opened by the user's own process: the kernel checks the user's rights,
	// so no path, symlink or race can make us write where the user could not.
	outFD, err := openOutput(cfg.Stdout)
	if err != nil {
		return fail(exitSetupFailed, "open output file: %v", err)
	}
	errFD := outFD
	if cfg.Stderr != cfg.Stdout {
		if errFD, err = openOutput(cfg.Stderr); err != nil {
			return fail(exitSetupFailed, "open error file: %v", err)
		}
	}
	if err := unix.Dup3(outFD, 1, 0); err != nil {
		return fail(exitSetupFailed, "redirect stdout: %v", err)
	}
	if err := unix.Dup3(errFD, 2, 0); err != nil {
		return fail(exitSetupFailed, "redirect stderr: %v", err)
	}
	if cfg.Dir != "" {
		if err := unix.Chdir(cfg.Dir); err != nil {
			return fail(exitSetupFailed, "enter working directory %s: %v", cfg.Dir, err)
		}
	}
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		code := exitNotExecutable
		if errors.Is(err, os.ErrNotExist) {
			code = exitNotFound
		}
		return fail(code, "%v", err)
	}
	if cfg.DataLimit > 0 {
		// RLIMIT_DATA (Linux >= 4.7) counts heap and private writable
		// mappings, so malloc and anonymous mmap fail past it, while the
		// large PROT_NONE address-space reservations of Go, Java or CUDA do
		// not count, as they would under RLIMIT_AS. RLIMIT_RSS is not
		// enforced by Linux at all. It is per process, not per job.
		lim := unix.Rlimit{Cur: cfg.DataLimit, Max: cfg.DataLimit}
		if err := unix.Setrlimit(unix.RLIMIT_DATA, &lim); err != nil {
			return fail(exitSetupFailed, "set memory rlimit: %v", err)
		}
	}
	// The job gets stdin, stdout and stderr and nothing else: descriptors
	// the daemon inherited from whoever started it (a lock file, a pipe)
	// must not reach the job, where they would leak and, once a CRIU dump
	// holds a lock on one, hang its restore.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	err = unix.Exec(path, cfg.Argv, cfg.Env)
	code := exitNotExecutable
	if errors.Is(err, unix.ENOENT) {
		code = exitNotFound
	}
	return fail(code, "execute %s: %v", path, err)
}

func openOutput(path string) (int, error) {
	if path == "" {
		path = os.DevNull
	}
	// O_NONBLOCK: a FIFO (or device) named as output must not block the
	// job's start forever; only regular files (and /dev/null) are taken.
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG && path != os.DevNull {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: not a regular file", path)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	return fd, nil
}

// lookPath resolves a command with the job's PATH (not the agent's), checking
// execute permission as the job's user, who runs this code.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	pathEnv, ok := envLookup(env, "PATH")
	if !ok {
		pathEnv = "/usr/local/bin:/usr/bin:/bin"
	}
	var denied error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("command not found: %s: %w", file, os.ErrNotExist)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("command %s: %w", p, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("command %s is a directory", p)
	}
	// AT_EACCESS: checked as the effective (file-system) identity, which
	// the spawner's launching thread has set to the user's.
	if err := unix.Faccessat2(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("command %s is not executable: %w", p, err)
	}
	return nil
}
