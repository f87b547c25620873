package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// tokenBlobPrefix names stored user tokens (by their SHA-256: the store
// never holds a usable token).
const tokenBlobPrefix = "token/"

// tokenRecord is what a user token stands for.
type tokenRecord struct {
	UID     uint32    `json:"uid"`
	GID     uint32    `json:"gid"`
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: stored before tokens expired (tokens.go)
}

type viaTokenKey struct{}

// EnableAgentTLS sets up what `hpcd server` needs to serve HTTPS: the
// cluster CA (created on the first start), a server certificate for the
// hosts of servers, dataDir/agent-join, the revoked agent certificates and
// the users' tokens. It returns the TLS configuration for the listener.
func (s *Server) EnableAgentTLS(dataDir string, servers []string) (*tls.Config, error) {
	p, err := loadOrCreatePKI(dataDir, servers)
	if err != nil {
		return nil, err
	}
	p.tokens, p.issued = map[string]tokenRecord{}, map[uint32][]time.Time{}
	err = s.store.Blobs(func(key string, data []byte) error {
		switch {
		case strings.HasPrefix(key, revokedBlobPrefix):
			p.revoked[strings.TrimPrefix(key, revokedBlobPrefix)] = string(data)
		case strings.HasPrefix(key, tokenBlobPrefix):
			var rec tokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("token %s: %w", key, err)
			}
			p.tokens[strings.TrimPrefix(key, tokenBlobPrefix)] = rec
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load revocations and tokens: %w", err)
	}
	s.mu.Lock()
	s.pki = p
	s.mu.Unlock()
	return p.tlsConfig(), nil
}

// TLSHandler serves the HTTPS listener: agents (mutual TLS, with the
// certificate signed at join), and users with a bearer token (the same
// /v1 API as on the Unix socket).
func (s *Server) TLSHandler() http.Handler {
	users := s.Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.RouteAgentJoin, s.handleJoin)
	mux.HandleFunc("POST "+api.RouteAgentRegister, s.agentRoute(agentCall(s, s.AgentRegister)))
	mux.HandleFunc("POST "+api.RouteAgentSync, s.agentRoute(agentCall(s, s.AgentSync)))
	mux.HandleFunc("POST "+api.RouteAgentToken, s.agentRoute(func(w http.ResponseWriter, r *http.Request, id AgentIdentity) {
		var req api.AgentTokenRequest
		if err := decodeBody(r, &req); err != nil {
			s.refuseAgent(w, r, id, err)
			return
		}
		resp, err := s.issueToken(req.UID, true)
		if err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("token issued through an agent", "node", id.Node, "uid", req.UID)
		writeJSON(w, http.StatusOK, resp)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.tokenCaller(r)
		if !ok {
			writeError(w, refuse(http.StatusUnauthorized, "no valid token: run `hpcsub login` on a node of the cluster (it stores one in ~/.config/hpc/)"))
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), callerKey{}, c), viaTokenKey{}, true)
		users.ServeHTTP(w, r.WithContext(ctx))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

// agentCall adapts one agent protocol call to HTTP: decode the request,
// call, answer with the response or the refusal (logged with the node).
func agentCall[Req, Resp any](s *Server, call func(context.Context, AgentIdentity, Req) (Resp, error)) func(http.ResponseWriter, *http.Request, AgentIdentity) {
	return func(w http.ResponseWriter, r *http.Request, id AgentIdentity) {
		var req Req
		if err := decodeBody(r, &req); err != nil {
			s.refuseAgent(w, r, id, err)
			return
		}
		resp, err := call(r.Context(), id, req)
		if err != nil {
			s.refuseAgent(w, r, id, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func (s *Server) refuseAgent(w http.ResponseWriter, r *http.Request, id AgentIdentity, err error) {
	s.log.Warn("refused an agent request", "node", id.Node, "path", r.URL.Path, "err", err)
	writeError(w, err)
}

// agentRoute admits only agents that present a certificate of the
// cluster's CA that has not been revoked.
func (s *Server) agentRoute(h func(http.ResponseWriter, *http.Request, AgentIdentity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			s.log.Warn("refused an agent without a certificate", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, refuse(http.StatusUnauthorized, "agents must present the certificate they got at join (hpcd agent --join FILE)"))
			return
		}
		cert := r.TLS.VerifiedChains[0][0]
		id := AgentIdentity{Node: cert.Subject.CommonName, Serial: serialHex(cert.SerialNumber)}
		s.mu.Lock()
		p := s.pki
		s.mu.Unlock()
		if p.isRevoked(id.Serial) {
			s.log.Warn("refused an agent with a revoked certificate", "node", id.Node, "remote", r.RemoteAddr, "path", r.URL.Path)
			writeError(w, refuse(http.StatusForbidden, "the certificate of node %q was revoked (the node was removed): join again with the cluster's agent-join file and a fresh --data-dir", id.Node))
			return
		}
		h(w, r, id)
	}
}

// handleJoin signs an agent's certificate for a node name when the request
// carries the cluster secret and the name is not held by another agent.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	p := s.pki
	s.mu.Unlock()
	if !p.checkSecret(req.Secret) {
		s.log.Warn("refused a join with a wrong cluster secret", "remote", r.RemoteAddr, "name", req.Name)
		writeError(w, refuse(http.StatusUnauthorized, "wrong cluster secret: copy the server's current agent-join file to this node"))
		return
	}
	if err := api.CheckNodeName(req.Name); err != nil {
		writeError(w, refuse(http.StatusBadRequest, "join: %v", err))
		return
	}
	s.mu.Lock()
	n, ok := s.nodes[req.Name]
	taken := ok && n.CertSerial != "" && !p.isRevoked(n.CertSerial)
	s.mu.Unlock()
	if taken {
		s.log.Warn("refused a join for a name another agent holds", "remote", r.RemoteAddr, "name", req.Name)
		writeError(w, refuse(http.StatusConflict, "node name %q is already joined by another agent: `hpcsub node remove %s` first (admin), or choose another --name", req.Name, req.Name))
		return
	}
	cert, serial, err := p.signAgent(req.Name, req.CSR)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("agent joined", "node", req.Name, "serial", serial, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, api.JoinResponse{Certificate: cert, CA: p.CAPEM()})
}

// tokenCaller finds the user of a request's bearer token.
func (s *Server) tokenCaller(r *http.Request) (Caller, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || len(tok) > 256 {
		return Caller{}, false
	}
	sum := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	p := s.pki
	s.mu.Unlock()
	if p == nil {
		return Caller{}, false
	}
	p.mu.Lock()
	rec, ok := p.tokens[hex.EncodeToString(sum[:])]
	p.mu.Unlock()
	if ok && s.tokenExpired(rec, time.Now()) {
		return Caller{}, false
	}
	return Caller{UID: rec.UID, GID: rec.GID}, ok
}

// handleToken gives the caller of the local Unix socket (the kernel
// vouches for the uid) a token for the HTTPS API.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if via, _ := r.Context().Value(viaTokenKey{}).(bool); via {
		writeError(w, refuse(http.StatusForbidden, "tokens are issued over a local Unix socket only: run `hpcsub login` on a node of the cluster"))
		return
	}
	resp, err := s.issueToken(callerOf(r).UID, false)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// RemoveNode forgets a drained node and revokes its agent's certificate,
// both in one commit (admins only).
func (s *Server) RemoveNode(c Caller, name string) error {
	if !s.isAdmin(c.UID) {
		return forbidden("only admins may remove nodes")
	}
	s.nodeWrites.Lock()
	defer s.nodeWrites.Unlock()
	s.mu.Lock()
	n, ok := s.nodes[name]
	var jobs []uint64
	for id, j := range s.jobs {
		if j.State == api.StateRunning && j.onNode(name) {
			jobs = append(jobs, id)
		}
	}
	p := s.pki
	s.mu.Unlock()
	switch {
	case !ok:
		return notFound("no node named %q: see `hpcsub nodes`", name)
	case !n.Drain:
		return badState("node %s is not drained: `hpcsub node drain %s --reason TEXT` first, then remove it once it is DRAINED", name, name)
	case len(jobs) > 0:
		sortIDs(jobs)
		return badState("node %s still runs jobs %v: wait until it is DRAINED", name, jobs)
	}
	blobs := map[string][]byte{}
	if n.CertSerial != "" {
		blobs[revokedBlobPrefix+n.CertSerial] = []byte(name)
	}
	if err := s.store.RemoveNode(name, blobs); err != nil {
		return storeFailed(err)
	}
	s.mu.Lock()
	sess := n.session
	delete(s.nodes, name)
	if sess != nil || s.agents[name] != nil {
		delete(s.agents, name)
	}
	s.mu.Unlock()
	if p != nil && n.CertSerial != "" {
		p.mu.Lock()
		p.revoked[n.CertSerial] = name
		p.mu.Unlock()
	}
	if sess != nil {
		sess.close()
	}
	s.log.Info("node removed", "node", name, "revoked_serial", n.CertSerial, "by_uid", c.UID)
	s.Kick()
	return nil
}

func (s *Server) handleRemoveNode(w http.ResponseWriter, r *http.Request) {
	if err := s.RemoveNode(callerOf(r), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
