package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Tokens are bounded: found as 300 calls of POST /v1/token growing hpc.db
// from 32 KB to 128 KB, tokens that never expired, and agents minting
// tokens for uid 0. A user holds one live token (a new one replaces the
// old, on disk and in memory, in one commit), a token expires after
// Limits.TokenTTL, issuing is rate limited per uid, and an agent may ask
// for an admin's token only when Config.AdminTokensViaAgent allows it.
const (
	DefaultTokenTTL = 30 * 24 * time.Hour
	// tokenBurst tokens may be issued to one uid per tokenWindow.
	tokenBurst  = 5
	tokenWindow = time.Minute
)

// tokenExpired says whether rec is past its expiry at now (records stored
// before expiries existed expire TokenTTL after their creation).
func (s *Server) tokenExpired(rec tokenRecord, now time.Time) bool {
	exp := rec.Expires
	if exp.IsZero() {
		ttl := s.cfg.Limits.TokenTTL
		if ttl < 0 {
			return false
		}
		exp = rec.Created.Add(ttl)
	}
	return !now.Before(exp)
}

// issueToken makes a new token for uid, replacing the uid's earlier ones;
// the replacement is stored (as hashes) before the token is handed out.
// viaAgent: the uid is an agent's word, not the kernel's.
func (s *Server) issueToken(uid uint32, viaAgent bool) (api.TokenResponse, error) {
	s.mu.Lock()
	p := s.pki
	s.mu.Unlock()
	if p == nil {
		return api.TokenResponse{}, refuse(http.StatusConflict, "this server has no https listener: tokens are only needed for `hpcsub --addr https://...`")
	}
	if viaAgent && s.isAdmin(uid) && !s.cfg.AdminTokensViaAgent {
		// A compromised node must not become root on the cluster.
		return api.TokenResponse{}, refuse(http.StatusForbidden, "uid %d is an admin: admin tokens are not issued through an agent; run `hpcsub login` on the server host (or start hpcd server with --admin-tokens-via-agent)", uid)
	}
	who, err := lookupIdentity(uid)
	if err != nil {
		return api.TokenResponse{}, refuse(http.StatusForbidden, "%v", err)
	}
	now := time.Now().UTC()
	p.mu.Lock()
	recent := p.issued[uid][:0]
	for _, at := range p.issued[uid] {
		if now.Sub(at) < tokenWindow {
			recent = append(recent, at)
		}
	}
	if len(recent) >= tokenBurst {
		p.issued[uid] = recent
		p.mu.Unlock()
		return api.TokenResponse{}, refuse(http.StatusTooManyRequests, "%d tokens were issued for you in the last %v: at most %d; wait a minute (each new token replaces the last, so the one you have keeps working)", len(recent), tokenWindow, tokenBurst)
	}
	p.issued[uid] = append(recent, now)
	var old []string
	for key, rec := range p.tokens {
		if rec.UID == uid {
			old = append(old, key)
		}
	}
	p.mu.Unlock()

	var b [32]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(tok))
	key := hex.EncodeToString(sum[:])
	rec := tokenRecord{UID: uid, GID: who.gid, User: who.name, Created: now}
	if ttl := s.cfg.Limits.TokenTTL; ttl > 0 {
		rec.Expires = now.Add(ttl)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return api.TokenResponse{}, err
	}
	drop := make([]string, len(old))
	for i, k := range old {
		drop[i] = tokenBlobPrefix + k
	}
	if err := s.store.SwapBlob(tokenBlobPrefix+key, data, drop); err != nil {
		return api.TokenResponse{}, storeFailed(err)
	}
	p.mu.Lock()
	for _, k := range old {
		delete(p.tokens, k)
	}
	p.tokens[key] = rec
	p.mu.Unlock()
	return api.TokenResponse{Token: tok, User: who.name, CA: p.CAPEM(), Servers: p.servers}, nil
}
