package api

import (
	"fmt"
	"os"
	"path/filepath"
)

// Routes of the /v1 API. {id} is a decimal job id, {name} a node name.
const (
	RouteJobs       = "/v1/jobs"                // GET list (?user=U&state=S), POST submit
	RouteJob        = "/v1/jobs/{id}"           // GET one
	RouteJobWait    = "/v1/jobs/{id}/wait"      // GET, long-polls until terminal (?timeout=30s)
	RouteJobCancel  = "/v1/jobs/{id}/cancel"    // POST
	RouteJobHold    = "/v1/jobs/{id}/hold"      // POST
	RouteJobRelease = "/v1/jobs/{id}/release"   // POST
	RouteNodes      = "/v1/nodes"               // GET
	RouteNodeDrain  = "/v1/nodes/{name}/drain"  // POST DrainRequest (admin)
	RouteNodeResume = "/v1/nodes/{name}/resume" // POST (admin)
	RouteHealth     = "/v1/health"              // GET
)

// DrainRequest is the body of a drain.
type DrainRequest struct {
	Reason  string `json:"reason"`
	Requeue bool   `json:"requeue"`
}

// EnvAddr names the environment variable that overrides the server address.
const EnvAddr = "HPC_ADDR"

// DefaultSocketPath is where `hpcd dev` listens and `hpcsub` looks when
// neither --addr nor $HPC_ADDR says otherwise: /run/hpc/hpcd.sock for
// root, else $XDG_RUNTIME_DIR/hpc/hpcd.sock, else /tmp/hpc-<uid>/hpcd.sock.
func DefaultSocketPath() string {
	if os.Geteuid() == 0 {
		return "/run/hpc/hpcd.sock"
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
