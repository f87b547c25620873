package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// The agent protocol. An agent always connects out to the server (nodes
// behind a firewall work): it registers once per connection with its
// inventory and the jobs it holds, then syncs in a loop. Each sync is a
// heartbeat that carries the outcomes that ended since the last one and
// acknowledges the commands applied so far; the server answers with the
// commands queued for the node (launch, cancel, signal, release), holding
// the request open up to SyncRequest.Wait when it has none. `hpcd dev`
// runs the same exchange in process; `hpcd agent` over HTTPS with mutual
// TLS.
const (
	RouteAgentJoin     = "/v1/agent/join"     // POST JoinRequest: cluster secret + CSR -> signed certificate
	RouteAgentRegister = "/v1/agent/register" // POST RegisterRequest (mutual TLS)
	RouteAgentSync     = "/v1/agent/sync"     // POST SyncRequest (mutual TLS)
	RouteNodeRemove    = "/v1/nodes/{name}"   // DELETE (admin): forget a drained node, revoke its certificate
	RouteToken         = "/v1/token"          // POST over a local Unix socket: the caller's API token
	RouteAgentToken    = "/v1/agent/token"    // POST AgentTokenRequest (mutual TLS): a token for a uid the agent vouches for
)

// ProtocolVersion is the agent protocol's version; a server refuses
// agents of another major version.
const ProtocolVersion = 1

// Bounds of the protocol, checked by the server before anything changes.
const (
	MaxNodeNameLen     = 63
	MaxNodeCPUs        = 8192
	MaxNodeGPUs        = 64
	MaxNodeFeatures    = 64
	MaxFeatureLen      = 64
	MaxOutcomesPerSync = 10000
	MaxJobsPerNode     = 100000
	MaxSyncWait        = time.Minute
)

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// CheckNodeName says what is wrong with a node name, if anything: names
// are host-name-like (letters, digits, '.', '_', '-'), up to 63 bytes.
func CheckNodeName(name string) error {
	if len(name) == 0 || len(name) > MaxNodeNameLen || !nodeNameRE.MatchString(name) {
		return fmt.Errorf("node name %q: use 1..%d letters, digits, '.', '_' or '-', starting and ending with a letter or digit", name, MaxNodeNameLen)
	}
	return nil
}

// RegisterRequest opens an agent's session: what the node has, which jobs
// the agent holds (running, or ended and not yet released), and the
// outcomes of jobs that ended while the server was away.
type RegisterRequest struct {
	Protocol     int              `json:"protocol"`
	AgentVersion string           `json:"agent_version"`
	Node         NodeRegistration `json:"node"`
	// Held lists every job the agent has state for.
	Held []uint64 `json:"held"`
	// Ended carries the outcomes the agent holds unreleased.
	Ended []Outcome `json:"ended,omitempty"`
	// GPUHealth lists the GPUs the agent found unhealthy (NVML).
	GPUHealth []GPUHealth `json:"gpu_health,omitempty"`
}

// RegisterResponse is the server's side of the reconcile: the jobs it still
// has RUNNING on the node that the agent holds are adopted; every other job
// the agent holds (ended meanwhile, or given to another node) is killed.
type RegisterResponse struct {
	Session string   `json:"session"`
	Adopt   []uint64 `json:"adopt"`
	Kill    []uint64 `json:"kill"`
	// Heartbeat is how often the agent must sync; DownTimeout is how long
	// without one before the server marks the node DOWN (and the agent,
	// cut off that long, stops its jobs: self-fencing).
	Heartbeat   time.Duration `json:"heartbeat"`
	DownTimeout time.Duration `json:"down_timeout"`
}

// SyncRequest is one heartbeat of a session.
type SyncRequest struct {
	Session string `json:"session"`
	// Seq grows by one with each sync of the session: an older or repeated
	// one is a replay and is refused.
	Seq uint64 `json:"seq"`
	// Ack is the highest command id the agent has taken on.
	Ack      uint64    `json:"ack"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
	// Running lists the jobs the agent runs now (a cross-check).
	Running   []uint64    `json:"running"`
	GPUHealth []GPUHealth `json:"gpu_health,omitempty"`
	// Wait is how long the server may hold the request for new commands.
	Wait time.Duration `json:"wait"`
}

// SyncResponse carries the commands not yet acknowledged, in order.
type SyncResponse struct {
	Commands []Command `json:"commands"`
}

// Command kinds.
const (
	CommandLaunch  = "launch"
	CommandCancel  = "cancel"
	CommandSignal  = "signal"
	CommandRelease = "release"
	// CommandCheckpoint asks for a checkpoint the agent makes itself (a
	// CRIU dump); signal-mode checkpoints are plain signal commands.
	CommandCheckpoint = "checkpoint"
)

// Command is one instruction to an agent. IDs grow within a node's queue;
// an agent applies each id once, in order, and acknowledges it.
type Command struct {
	ID     uint64      `json:"id"`
	Kind   string      `json:"kind"`
	JobID  uint64      `json:"job_id"`
	Launch *Assignment `json:"launch,omitempty"`
	Reason string      `json:"reason,omitempty"` // cancel
	Signal string      `json:"signal,omitempty"` // signal: e.g. SIGUSR1
	// Checkpoint is the request of a checkpoint command.
	Checkpoint *CheckpointRequest `json:"checkpoint,omitempty"`
}

// GPUHealth is an agent's verdict on one of its GPUs.
type GPUHealth struct {
	Index   int    `json:"index"`
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"` // e.g. "XID 79 (GPU fell off the bus)"
}

// JoinRequest asks the server to sign the agent's certificate.
type JoinRequest struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
	CSR    string `json:"csr"` // PEM
}

// JoinResponse is the agent's signed certificate and the cluster's CA.
type JoinResponse struct {
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
}

// CAFingerprint is how a join file names the cluster CA: sha256:<hex> of
// the certificate's DER. The server writes it and the agent checks it.
func CAFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// JoinFile is what `D/agent-join` holds: everything an agent needs to join.
type JoinFile struct {
	Servers       []string `json:"servers"`        // https://host:port
	CAFingerprint string   `json:"ca_fingerprint"` // sha256:<hex> of the CA certificate's DER
	Secret        string   `json:"secret"`
}

// AgentTokenRequest asks for a token for a local user of the agent's node,
// whose uid the agent read from its own socket's peer credentials.
type AgentTokenRequest struct {
	UID uint32 `json:"uid"`
}

// TokenResponse is a user's API token, and the CA to trust the server with.
type TokenResponse struct {
	Token   string   `json:"token"`
	User    string   `json:"user"`
	CA      string   `json:"ca,omitempty"`      // PEM
	Servers []string `json:"servers,omitempty"` // https addresses
}

// ValidOutcomeState reports whether s is a state an agent may report.
func ValidOutcomeState(s JobState) bool {
	switch s {
	case StateCompleted, StateFailed, StateTimeout, StateOutOfMemory, StateCancelled, StateNodeFail:
		return true
	}
	return false
}

// Version is the version of these binaries, as agents report it.
var Version = "0.7.0-dev"

// ErrSessionLost means the server no longer knows the agent's session (it
// restarted, or another registration replaced it): register again.
var ErrSessionLost = errors.New("agent session lost: register again")

// ErrAgentRefused means the server refuses the agent itself (no, wrong or
// revoked credentials, a name held by another agent): retrying is futile.
var ErrAgentRefused = errors.New("agent refused by the server")
