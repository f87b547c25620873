package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procIdentity names one process across pid reuse: its pid and the start
// time the kernel reports in /proc/<pid>/stat (clock ticks since boot).
type procIdentity struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procStat returns the state letter, parent pid and start time of pid.
func procStat(pid int) (state byte, ppid int, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name may contain spaces and parentheses: fields after it
	// start past the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat ppid: %w", pid, err)
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 of proc(5)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return f[0][0], ppid, start, nil
}

// identify returns the identity of a running process.
func identify(pid int) (procIdentity, error) {
	_, _, start, err := procStat(pid)
	if err != nil {
		return procIdentity{}, err
	}
	return procIdentity{PID: pid, Start: start}, nil
}

// alive reports whether the process is still the one identified and has not
// exited (a zombie has exited).
func (id procIdentity) alive() bool {
	if id.PID <= 0 {
		return false
	}
	state, _, start, err := procStat(id.PID)
	return err == nil && start == id.Start && state != 'Z'
}

// descendants lists the live (non-zombie) descendants of root by scanning
// /proc. The shim is a child subreaper, so orphans of the job, even those that
// double-forked or called setsid, are re-parented to it and stay in its tree.
func descendants(root int) []int {
	if out, ok := descendantsByChildren(root); ok {
		return out
	}
	return descendantsByScan(root)
}

// descendantsByScan finds them by reading every /proc/PID/stat: the way
// that works on any kernel.
func descendantsByScan(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	zombie := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, ppid, _, err := procStat(pid)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		zombie[pid] = state == 'Z'
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !zombie[c] {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// descendantsByChildren walks /proc/PID/task/TID/children from root, which
// touches only the tree itself: scanning all of /proc on every job's end
// cost milliseconds per job on a busy host. ok is false where the kernel
// lacks these files (CONFIG_PROC_CHILDREN).
func descendantsByChildren(root int) (out []int, ok bool) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		return nil, false
	}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		if err != nil {
			continue // exited meanwhile
		}
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if errors.Is(err, os.ErrNotExist) && p == root {
				if _, serr := os.Stat("/proc/" + strconv.Itoa(p)); serr == nil {
					return nil, false // the process exists but the kernel has no children files
				}
			}
			for _, f := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(f)
				if err != nil {
					continue
				}
				if state, _, _, err := procStat(c); err == nil && state != 'Z' {
					out = append(out, c)
				}
				queue = append(queue, c)
			}
		}
	}
	return out, true
}

// killTree SIGKILLs every descendant of root (not root itself), repeating
// until none is left, so that processes forked during a round die too.
func killTree(root int) error {
	if root <= 0 {
		return nil // pid 0 would make every process a "descendant"
	}
	for round := 0; round < 200; round++ {
		pids := descendants(root)
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("processes below pid %d still alive after repeated SIGKILL", root)
}

// waitPidfd blocks until the process behind pidfd has exited.
func waitPidfd(fd int) error {
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd: %w", err)
		}
	}
}

// signalName returns "SIGKILL" for syscall.SIGKILL and so on.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// writeFileAtomic writes data to path so that readers see either the old or
// the whole new content: tmp file, rename. With durable it also survives a
// machine crash (fsync of the file before the rename, of the directory
// after); without, only a crash of the writing process, which is all that
// files about live processes (pids, the launch record) need: after a
// machine crash those processes are gone anyway. Each fsync costs about a
// millisecond on the critical path of every job.
func writeFileAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: fsync: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
