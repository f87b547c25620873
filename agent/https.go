package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// LoadJoinFile reads and checks an agent-join file.
func LoadJoinFile(path string) (api.JoinFile, error) {
	var jf api.JoinFile
	data, err := os.ReadFile(path)
	if err != nil {
		return jf, fmt.Errorf("join file: %w (copy the server's DATA_DIR/agent-join to this node)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jf); err != nil {
		return jf, fmt.Errorf("join file %s is not an agent-join file: %w", path, err)
	}
	if !strings.HasPrefix(jf.CAFingerprint, "sha256:") || len(jf.CAFingerprint) != len("sha256:")+64 || jf.Secret == "" {
		return jf, fmt.Errorf("join file %s lacks the CA fingerprint or the cluster secret", path)
	}
	return jf, nil
}

// verifyServer checks the server's certificate chain against the cluster
// CA: the CA pinned by fingerprint at join, by certificate afterwards.
// Host names are not checked: the cluster CA signs only this cluster's
// server, and agents may reach it by any of its addresses.
func verifyServer(match func(ca *x509.Certificate) bool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the server presented no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		for _, r := range raw[1:] {
			ca, err := x509.ParseCertificate(r)
			if err != nil || !match(ca) {
				continue
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}
		return errors.New("the server's certificate is not from this cluster's CA (the join file's fingerprint does not match)")
	}
}

// Credentials are an agent's certificate and the cluster CA.
type Credentials struct {
	Cert tls.Certificate
	CA   *x509.Certificate
}

// TLSConfig is the agent's side of mutual TLS.
func (c Credentials) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS12,
		Certificates:          []tls.Certificate{c.Cert},
		InsecureSkipVerify:    true, // verifyServer does the verification, without host names
		VerifyPeerCertificate: verifyServer(func(ca *x509.Certificate) bool { return ca.Equal(c.CA) }),
	}
}

// Join returns the agent's credentials from dir/tls, or joins the cluster
// first: a new key, a CSR for name, signed by the server when the join
// file's secret is right; the CA is pinned by the join file's fingerprint.
func Join(ctx context.Context, jf api.JoinFile, server, name, dir string) (Credentials, error) {
	tlsDir := filepath.Join(dir, "tls")
	crtPath, keyPath, caPath := filepath.Join(tlsDir, "agent.crt"), filepath.Join(tlsDir, "agent.key"), filepath.Join(tlsDir, "ca.crt")
	if c, err := loadCredentials(crtPath, keyPath, caPath); err == nil {
		if c.Cert.Leaf != nil && c.Cert.Leaf.Subject.CommonName != name {
			return Credentials{}, fmt.Errorf("this data directory's certificate is for node %q, not %q: use its --name or another --data-dir", c.Cert.Leaf.Subject.CommonName, name)
		}
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Credentials{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return Credentials{}, err
	}
	conf := &tls.Config{
		MinVersion:            tls.VersionTLS12,
		InsecureSkipVerify:    true, // pinned by fingerprint below
		VerifyPeerCertificate: verifyServer(func(ca *x509.Certificate) bool { return api.CAFingerprint(ca.Raw) == jf.CAFingerprint }),
	}
	var resp api.JoinResponse
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 30 * time.Second}
	req := api.JoinRequest{Name: name, Secret: jf.Secret, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))}
	if err := post(ctx, cl, server, api.RouteAgentJoin, req, &resp); err != nil {
		return Credentials{}, fmt.Errorf("join %s as %q: %w", server, name, err)
	}
	caBlock, _ := pem.Decode([]byte(resp.CA))
	if caBlock == nil || api.CAFingerprint(caBlock.Bytes) != jf.CAFingerprint {
		return Credentials{}, errors.New("join: the server's CA does not match the join file's fingerprint")
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return Credentials{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Credentials{}, err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{caPath, []byte(resp.CA)},
		{crtPath, []byte(resp.Certificate)},
		{keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}, // last: its presence says "joined"
	} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			return Credentials{}, err
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			return Credentials{}, err
		}
	}
	return loadCredentials(crtPath, keyPath, caPath)
}

func loadCredentials(crtPath, keyPath, caPath string) (Credentials, error) {
	if _, err := os.Stat(keyPath); err != nil {
		return Credentials{}, err
	}
	cert, err := tls.LoadX509KeyPair(crtPath, keyPath)
	if err != nil {
		return Credentials{}, fmt.Errorf("agent certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return Credentials{}, fmt.Errorf("cluster CA: %w", err)
	}
	b, _ := pem.Decode(caPEM)
	if b == nil {
		return Credentials{}, fmt.Errorf("%s: no certificate", caPath)
	}
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return Credentials{}, fmt.Errorf("cluster CA: %w", err)
	}
	return Credentials{Cert: cert, CA: ca}, nil
}

// HTTPS is the agent protocol over HTTPS with mutual TLS.
type HTTPS struct {
	server string
	client *http.Client
}

// NewHTTPS returns the transport to server (https://host:port).
func NewHTTPS(server string, c Credentials) *HTTPS {
	tr := &http.Transport{TLSClientConfig: c.TLSConfig(), MaxIdleConns: 4, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: api.MaxSyncWait + 30*time.Second,
		// HTTP/2 (the server offers it): a sync cut short for a new
		// outcome resets its stream instead of closing the connection,
		// which cost a new TLS handshake per job.
		ForceAttemptHTTP2: true}
	return &HTTPS{server: strings.TrimSuffix(server, "/"), client: &http.Client{Transport: tr}}
}

// Register implements Transport.
func (h *HTTPS) Register(ctx context.Context, req api.RegisterRequest) (api.RegisterResponse, error) {
	var resp api.RegisterResponse
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := post(ctx, h.client, h.server, api.RouteAgentRegister, req, &resp)
	return resp, err
}

// Sync implements Transport.
func (h *HTTPS) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error) {
	var resp api.SyncResponse
	// A server that holds the request much longer than asked (or a dead
	// connection that never says so) must not stall the heartbeat.
	ctx, cancel := context.WithTimeout(ctx, req.Wait+5*time.Second)
	defer cancel()
	err := post(ctx, h.client, h.server, api.RouteAgentSync, req, &resp)
	return resp, err
}

// Token asks the server for a token for a local user (see TokenProxy).
func (h *HTTPS) Token(ctx context.Context, uid uint32) (api.TokenResponse, error) {
	var resp api.TokenResponse
	err := post(ctx, h.client, h.server, api.RouteAgentToken, api.AgentTokenRequest{UID: uid}, &resp)
	return resp, err
}

// post sends one JSON request; refusals map onto api.ErrSessionLost and
// api.ErrAgentRefused, other failures are worth retrying.
func post(ctx context.Context, cl *http.Client, server, route string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	u, err := url.JoinPath(server, route)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		switch {
		case resp.StatusCode == http.StatusConflict && strings.HasPrefix(msg, api.ErrSessionLost.Error()):
			return fmt.Errorf("%w (%s)", api.ErrSessionLost, msg)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			return fmt.Errorf("%w: %s", api.ErrAgentRefused, msg)
		}
		return fmt.Errorf("server answered %d: %s", resp.StatusCode, msg)
	}
	return json.Unmarshal(raw, out)
}
