package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startFailure is a job whose command could not be run (not found, output
// not writable): it "ran" and failed, as a shell would report it.
type startFailure struct {
	code int
	msg  string
}

// startInSlot forks the job inside slot sl without a Go re-execution: a
// thread of its own first moves into the slot (v1 moves single threads
// through the "tasks" file), takes the job's umask and working directory
// (after unsharing its filesystem context) and the user's file-system
// identity, opens the output files as the user, and then forks: the child
// inherits the thread's cgroups, umask and directory, and Go's fork sets
// the user's credentials and a new session before the exec. The thread is
// thrown away afterwards (its goroutine ends locked), so none of this
// reaches the spawner's other threads.
func startInSlot(s Spec, argv []string, sl *slot) (int, *startFailure, error) {
	type result struct {
		pid int
		sf  *startFailure
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		pid, sf, err := startOnThread(s, argv, sl)
		ch <- result{pid, sf, err}
	}()
	r := <-ch
	return r.pid, r.sf, r.err
}

func startOnThread(s Spec, argv []string, sl *slot) (int, *startFailure, error) {
	tid := []byte(strconv.Itoa(unix.Gettid()))
	for _, d := range sl.taskDirs() {
		if err := writeCg(filepath.Join(d, "tasks"), string(tid)); err != nil {
			return 0, nil, fmt.Errorf("enter cgroup: %w", err)
		}
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return 0, nil, fmt.Errorf("unshare fs: %w", err)
	}
	unix.Umask(int(s.Umask & 0o777))
	asUser := s.UID != uint32(os.Geteuid()) || s.GID != uint32(os.Getegid())
	if asUser {
		if err := setThreadFSIdentity(s.UID, s.GID, s.Groups); err != nil {
			return 0, nil, err
		}
	}
	var stderr *os.File
	fail := func(code int, format string, a ...any) (int, *startFailure, error) {
		msg := fmt.Sprintf(format, a...)
		if stderr != nil {
			fmt.Fprintf(stderr, "hpc: %s\n", msg) // as the init stage did: the job's stderr file
		}
		return 0, &startFailure{code: code, msg: msg}, nil
	}
	if s.CheckpointDir != "" {
		if err := os.MkdirAll(s.CheckpointDir, 0o777); err != nil {
			return fail(exitSetupFailed, "create checkpoint directory: %v", err)
		}
	}
	outFD, err := openOutput(s.Stdout)
	if err != nil {
		return fail(exitSetupFailed, "open output file: %v", err)
	}
	stdout := os.NewFile(uintptr(outFD), "stdout")
	defer stdout.Close()
	stderr = stdout
	if s.Stderr != s.Stdout {
		fd, err := openOutput(s.Stderr)
		if err != nil {
			return fail(exitSetupFailed, "open error file: %v", err)
		}
		stderr = os.NewFile(uintptr(fd), "stderr")
		defer stderr.Close()
	}
	if s.Dir != "" {
		if err := unix.Chdir(s.Dir); err != nil {
			return fail(exitSetupFailed, "enter working directory %s: %v", s.Dir, err)
		}
	} else if err := unix.Chdir("/"); err != nil {
		return 0, nil, fmt.Errorf("chdir /: %w", err)
	}
	env := JobEnv(s)
	path, err := lookPath(argv[0], env)
	if err != nil {
		code := exitNotExecutable
		if errors.Is(err, os.ErrNotExist) {
			code = exitNotFound
		}
		return fail(code, "%v", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	attr := &syscall.SysProcAttr{Setsid: true}
	if asUser || os.Geteuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: s.Groups}
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: []*os.File{devnull, stdout, stderr}, Sys: attr})
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && (errno == syscall.EAGAIN || errno == syscall.ENOMEM) {
			return 0, nil, fmt.Errorf("start job process: %w", err)
		}
		code := exitNotExecutable
		if errors.Is(err, unix.ENOENT) {
			code = exitNotFound
		}
		return fail(code, "execute %s: %v", path, errors.Unwrap(err))
	}
	pid := p.Pid
	_ = p.Release() // reaped by the spawner's wait4(-1)
	return pid, nil, nil
}

// setThreadFSIdentity makes the calling thread (only it: raw system calls,
// not glibc's or Go's all-threads versions) check file access as uid/gid
// with the user's groups.
func setThreadFSIdentity(uid, gid uint32, groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	// setfsuid reports no error: the current value is read back instead.
	if cur, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); uint32(cur) != uid {
		return fmt.Errorf("setfsuid %d: still %d", uid, cur)
	}
	if cur, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0); uint32(cur) != gid {
		return fmt.Errorf("setfsgid %d: still %d", gid, cur)
	}
	return nil
}
