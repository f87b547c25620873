package exec

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// The spawner launches jobs as any user, root included: only its own user
// (root: the agent) may talk to it. The socket is made 0600 whatever the
// daemon's umask, and every connection's peer is checked besides, so that
// a job running as its user can never send it a command.

// listenPrivate listens on a unix socket only the spawner's user may open.
func listenPrivate(path string) (*net.UnixListener, error) {
	old := unix.Umask(0o077) // no window where the socket is open to others
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// peerAllowed reports whether the process at the other end of c runs as
// the spawner's own user.
func peerAllowed(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, os.Geteuid())
	}
	return nil
}
