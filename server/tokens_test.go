package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
)

// tokenStatus is the HTTPS API's answer to a request with token.
func (th *tlsHarness) tokenStatus(token string) int {
	th.t.Helper()
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest(http.MethodGet, th.addr+api.RouteNodes, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := cl.Do(req)
	if err != nil {
		th.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// storedTokens counts the token records on disk and in memory.
func (th *tlsHarness) storedTokens() (disk, mem int) {
	th.t.Helper()
	err := th.srv.store.Blobs(func(key string, _ []byte) error {
		if strings.HasPrefix(key, tokenBlobPrefix) {
			disk++
		}
		return nil
	})
	if err != nil {
		th.t.Fatal(err)
	}
	th.srv.pki.mu.Lock()
	mem = len(th.srv.pki.tokens)
	th.srv.pki.mu.Unlock()
	return disk, mem
}

// Found as: 300 POST /v1/token grew hpc.db from 32 KB to 128 KB; tokens
// never expired. A user has one live token, issuing is rate limited.
func TestTokenRotatesAndIsRateLimited(t *testing.T) {
	th := newTLSHarnessWith(t, testConfig())
	ctx := context.Background()
	var last string
	for i := range tokenBurst {
		tok, err := th.client.Token(ctx)
		if err != nil {
			t.Fatalf("token %d: %v", i+1, err)
		}
		if last != "" && th.tokenStatus(last) != http.StatusUnauthorized {
			t.Errorf("token %d: the one it replaced still works", i+1)
		}
		if st := th.tokenStatus(tok.Token); st != http.StatusOK {
			t.Errorf("token %d: HTTP %d with it", i+1, st)
		}
		if disk, mem := th.storedTokens(); disk != 1 || mem != 1 {
			t.Fatalf("after %d tokens: %d stored, %d in memory, want 1 and 1", i+1, disk, mem)
		}
		last = tok.Token
	}
	_, err := th.client.Token(ctx)
	if err == nil || !strings.Contains(err.Error(), "at most 5") {
		t.Fatalf("token %d within a minute: %v, want a refusal saying the rate", tokenBurst+1, err)
	}
	if th.tokenStatus(last) != http.StatusOK {
		t.Errorf("a refused request revoked the live token")
	}
}

func TestTokenExpires(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.TokenTTL = time.Nanosecond // expired as soon as issued
	th := newTLSHarnessWith(t, cfg)
	tok, err := th.client.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := th.tokenStatus(tok.Token); st != http.StatusUnauthorized {
		t.Fatalf("an expired token: HTTP %d, want 401", st)
	}
	// A record stored before tokens had expiries ends TokenTTL after it was made.
	old := tokenRecord{Created: time.Now().Add(-DefaultTokenTTL - time.Hour)}
	th.srv.cfg.Limits.TokenTTL = DefaultTokenTTL
	if !th.srv.tokenExpired(old, time.Now()) {
		t.Fatalf("a record older than the default TTL is live")
	}
}

// Found as: an agent could ask for a token for uid 0 (a compromised node
// became root on the cluster). By default an agent gets no admin token.
func TestAgentGetsNoAdminToken(t *testing.T) {
	for _, allow := range []bool{false, true} {
		cfg := testConfig()
		cfg.AdminTokensViaAgent = allow
		th := newTLSHarnessWith(t, cfg)
		creds, err := th.joinAs("a1")
		if err != nil {
			t.Fatal(err)
		}
		tr := agent.NewHTTPS(th.addr, creds)
		if _, err := register(tr, "a1"); err != nil {
			t.Fatal(err)
		}
		_, err = tr.Token(context.Background(), 0)
		if allow && err != nil {
			t.Errorf("allowed by policy: %v", err)
		}
		if !allow && (err == nil || !strings.Contains(err.Error(), "admin tokens are not issued through an agent")) {
			t.Errorf("uid 0 through an agent: %v, want a refusal", err)
		}
		if _, err := tr.Token(context.Background(), nobody); err != nil {
			t.Errorf("nobody's token through an agent: %v", err)
		}
	}
}
