package api

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Routes of the /v1 API. {id} is a decimal job id, {name} a node name.
const (
	RouteJobs       = "/v1/jobs"                // GET list (?user=U&state=S), POST submit
	RouteJob        = "/v1/jobs/{id}"           // GET one
	RouteJobWait    = "/v1/jobs/{id}/wait"      // GET, long-polls until terminal (?timeout=30s)
	RouteJobCancel  = "/v1/jobs/{id}/cancel"    // POST
	RouteJobHold    = "/v1/jobs/{id}/hold"      // POST
	RouteJobRelease = "/v1/jobs/{id}/release"   // POST
	RouteJobRequeue = "/v1/jobs/{id}/requeue"   // POST: stop a running job and queue it again
	RouteNodes      = "/v1/nodes"               // GET
	RouteNodeDrain  = "/v1/nodes/{name}/drain"  // POST DrainRequest (admin)
	RouteNodeResume = "/v1/nodes/{name}/resume" // POST (admin)
	RouteHealth     = "/v1/health"              // GET
)

// DrainRequest is the body of a drain.
type DrainRequest struct {
	Reason  string `json:"reason"`
	Requeue bool   `json:"requeue"`
	// GPU, when set, drains only that GPU (its index on the node).
	GPU *int `json:"gpu,omitempty"`
}

// ResumeRequest is the optional body of a resume: GPU, when set, returns
// only that GPU to service.
type ResumeRequest struct {
	GPU *int `json:"gpu,omitempty"`
}

// EnvAddr names the environment variable that overrides the server address.
const EnvAddr = "HPC_ADDR"

// SystemSocketPath is where a root `hpcd dev` (or a site's server) listens.
const SystemSocketPath = "/run/hpc/hpcd.sock"

// DefaultSocketPath is where `hpcd dev` listens when neither --listen says
// otherwise: /run/hpc/hpcd.sock for root, else
// $XDG_RUNTIME_DIR/hpc/hpcd.sock, else /tmp/hpc-<uid>/hpcd.sock.
func DefaultSocketPath() string {
	if os.Geteuid() == 0 {
		return SystemSocketPath
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "hpc", "hpcd.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("hpc-%d", os.Getuid()), "hpcd.sock")
}

// DefaultDataDir is where `hpcd dev` keeps its store and job state by
// default: /var/lib/hpc for root, else $XDG_DATA_HOME/hpc or ~/.local/share/hpc.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/hpc"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "hpc")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("hpc-%d", os.Getuid()), "data")
	}
	return filepath.Join(home, ".local", "share", "hpc")
}

// ClientSocketPath is where clients look without --addr or $HPC_ADDR: the
// system daemon's socket when there is one (users talk to root's cluster),
// else the caller's own `hpcd dev`.
func ClientSocketPath() string {
	if _, err := os.Stat(SystemSocketPath); err == nil {
		return SystemSocketPath
	}
	return DefaultSocketPath()
}

// CheckSocketPath refuses a socket that another local user could have put
// there: its directory must belong to root or the caller and not be
// writable by others (unless sticky, like /tmp), and the socket itself must
// belong to root or the caller. Clients send their whole environment to
// the server, so talking to an impostor would leak it; a server must not
// listen where an impostor could replace it.
func CheckSocketPath(path string) error {
	me := uint32(os.Geteuid())
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if sys.Uid != 0 && sys.Uid != me {
		return fmt.Errorf("%s belongs to uid %d, not to root or you", dir, sys.Uid)
	}
	if st.Mode().Perm()&0o002 != 0 && st.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by every user", dir)
	}
	if lst, err := os.Lstat(path); err == nil {
		if ls, ok := lst.Sys().(*syscall.Stat_t); ok && ls.Uid != 0 && ls.Uid != me {
			return fmt.Errorf("%s belongs to uid %d, not to root or you", path, ls.Uid)
		}
	}
	return nil
}
