package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// openOutput opens a job's output file for `logs` as the job's user, and
// never through a symbolic link at the path: found as root running
// `hpcsub logs ID` printing /root/x, which the job's owner had linked at
// the output path. When root reads another user's job, the open runs on a
// thread whose filesystem uid and gid are the job user's (with no
// supplementary groups), so the kernel checks every directory and the
// file as it would for that user; the descriptor is then read as usual.
func openOutput(path string, uid int) (*os.File, error) {
	if os.Geteuid() != 0 || uid <= 0 {
		return openNoFollow(path)
	}
	gid := uid
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if g, err := strconv.Atoi(u.Gid); err == nil {
			gid = g
		}
	}
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: this thread's identity is changed for good, so
		// the runtime ends the thread with this goroutine.
		runtime.LockOSThread()
		if err := becomeOnThread(uid, gid); err != nil {
			ch <- result{nil, err}
			return
		}
		f, err := openNoFollow(path)
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

func openNoFollow(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link: logs does not follow links at a job's output path", path)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// becomeOnThread sets the calling thread's filesystem ids to uid and gid
// and drops its supplementary groups. These raw calls act on this thread
// alone (the Go wrappers would change every thread of the process).
func becomeOnThread(uid, gid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop groups to read as uid %d: %w", uid, e)
	}
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	// setfs[ug]id report no errors: asking again (with an invalid id,
	// which changes nothing) returns the id in force.
	cur, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0)
	if int(cur) != uid {
		return fmt.Errorf("could not take uid %d to read the job's output", uid)
	}
	return nil
}
