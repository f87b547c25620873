package server

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Connection limits of the API socket: a cap per uid (from SO_PEERCRED,
// which the kernel vouches for), a reserve of descriptors kept for
// launches and the store, and timeouts for connections that send nothing.
// A connection refused for either limit is answered 429 or 503 and
// closed at once, so the client says why instead of hanging.

// connCounter counts open API connections by uid.
type connCounter struct {
	mu    sync.Mutex
	byUID map[uint32]int
	total int
	// fds is the number of open descriptors when last read (at fdsAt),
	// and totalAt the connection count then: in between, the count moves
	// with the connections.
	fds     int
	fdsAt   time.Time
	totalAt int
}

// Listen wraps the API's Unix-socket listener with the per-uid cap and the
// descriptor reserve of s's Limits.
func (s *Server) Listen(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, s: s}
}

// HTTPServer is the API server with the timeouts of s's Limits: a client
// must send its request header within 10 s, and an idle keep-alive
// connection is closed after Limits.IdleTimeout. Long polls (wait) are
// not cut: there is no write timeout.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // a request body trickled in forever
		IdleTimeout:       s.cfg.Limits.IdleTimeout,
	}
}

type limitedListener struct {
	net.Listener
	s *Server
}

// limitedConn is an accepted connection with its peer's credentials; its
// count is given back once, on the first Close.
type limitedConn struct {
	net.Conn
	cred     *unix.Ucred
	release  sync.Once
	released func()
}

func (c *limitedConn) Close() error {
	c.release.Do(c.released)
	return c.Conn.Close()
}

// Accept returns the next connection within the limits; connections over
// a limit are answered and closed here, never handed to the server.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cred := peerCred(c)
		status, msg := l.s.admit(cred)
		if status != 0 {
			refuseConn(c, status, msg)
			continue
		}
		uid := uint32(0)
		if cred != nil {
			uid = cred.Uid
		}
		return &limitedConn{Conn: c, cred: cred, released: func() { l.s.leave(uid) }}, nil
	}
}

// admit counts a new connection of cred's uid, or says why not.
func (s *Server) admit(cred *unix.Ucred) (int, string) {
	lim := s.cfg.Limits
	cc := &s.conns
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.byUID == nil {
		cc.byUID = map[uint32]int{}
	}
	uid := uint32(0)
	if cred != nil {
		uid = cred.Uid
	}
	if reserve := lim.FDReserve; reserve > 0 {
		if uid == 0 {
			reserve /= 2 // root keeps a way in to look and to act
		}
		if free, ok := cc.freeFDsLocked(); ok && free < reserve {
			return http.StatusServiceUnavailable, "the server is short of file descriptors: try again shortly"
		}
	}
	if uid != 0 && lim.MaxConnsPerUser > 0 && cc.byUID[uid] >= lim.MaxConnsPerUser {
		return http.StatusTooManyRequests, "too many open connections of your user: close some (at most " + strconv.Itoa(lim.MaxConnsPerUser) + " per user)"
	}
	cc.byUID[uid]++
	cc.total++
	return 0, ""
}

func (s *Server) leave(uid uint32) {
	cc := &s.conns
	cc.mu.Lock()
	cc.byUID[uid]--
	if cc.byUID[uid] <= 0 {
		delete(cc.byUID, uid)
	}
	cc.total--
	cc.mu.Unlock()
}

// freeFDsLocked estimates the descriptors the process may still open:
// the soft RLIMIT_NOFILE less those open, read from /proc/self/fd at most
// every 100 ms and otherwise moved along with the connection count.
func (cc *connCounter) freeFDsLocked() (int, bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0, false
	}
	if time.Since(cc.fdsAt) > 100*time.Millisecond {
		n, err := openFDs()
		if err != nil {
			return 0, false
		}
		cc.fds, cc.fdsAt, cc.totalAt = n, time.Now(), cc.total
	}
	open := cc.fds + (cc.total - cc.totalAt) + 1 // +1: the connection being admitted
	return int(rl.Cur) - open, true
}

// openFDs counts the process's open descriptors.
func openFDs() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return 0, err
			}
			return n - 1, nil // less the one reading the directory
		}
	}
}

func peerCred(c net.Conn) *unix.Ucred {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return nil
	}
	return cred
}

// refuseConn answers a refused connection with one HTTP response and
// closes it, without waiting for (or reading) its request.
func refuseConn(c net.Conn, status int, msg string) {
	body := `{"error":"` + msg + `"}` + "\n"
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write([]byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Content-Type: application/json\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	_ = c.Close()
}
