package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// clusterPKI is the cluster's own certificate authority: it signs the
// server's certificate and, at join, each agent's. Agents prove who they
// are with that certificate (mutual TLS); the CA's key never leaves the
// server's data directory.
type clusterPKI struct {
	dir     string
	caCert  *x509.Certificate
	caDER   []byte
	caKey   *ecdsa.PrivateKey
	server  tls.Certificate
	secret  string
	servers []string

	mu      sync.Mutex
	revoked map[string]string      // certificate serial (hex) -> node it was for
	tokens  map[string]tokenRecord // SHA-256 (hex) of a user token -> its user
	issued  map[uint32][]time.Time // uid -> when its tokens of the last minute were issued
}

const (
	revokedBlobPrefix = "revoked/"
	agentCertLifetime = 5 * 365 * 24 * time.Hour
)

// loadOrCreatePKI reads the CA and cluster secret from dir/tls, creating
// them on the first start, issues a fresh server certificate for the
// hosts of servers, and writes dir/agent-join (mode 0600).
func loadOrCreatePKI(dir string, servers []string) (*clusterPKI, error) {
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", tlsDir, err)
	}
	p := &clusterPKI{dir: dir, servers: servers, revoked: map[string]string{}}
	caCrt, caKey, secretFile := filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "ca.key"), filepath.Join(tlsDir, "cluster-secret")
	if _, err := os.Stat(caKey); errors.Is(err, os.ErrNotExist) {
		if err := createCA(caCrt, caKey, secretFile); err != nil {
			return nil, err
		}
	}
	var err error
	if p.caDER, p.caKey, err = readPair(caCrt, caKey); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if p.caCert, err = x509.ParseCertificate(p.caDER); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	sec, err := os.ReadFile(secretFile)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	p.secret = strings.TrimSpace(string(sec))
	if err := p.issueServerCert(); err != nil {
		return nil, err
	}
	join, err := json.MarshalIndent(api.JoinFile{Servers: servers, CAFingerprint: p.Fingerprint(), Secret: p.secret}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "agent-join"), append(join, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write agent-join: %w", err)
	}
	return p, nil
}

func createCA(crtPath, keyPath, secretPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "hpc cluster CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(20 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	var sec [32]byte
	rand.Read(sec[:])
	// Secret and certificate first, key last: the key's presence is what
	// says the CA exists.
	if err := writeFileAtomic(secretPath, []byte(hex.EncodeToString(sec[:])+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func (p *clusterPKI) issueServerCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "hpcd server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(agentCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, s := range p.servers {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(u.Hostname()); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if u.Hostname() != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, u.Hostname())
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return fmt.Errorf("issue server certificate: %w", err)
	}
	p.server = tls.Certificate{Certificate: [][]byte{der, p.caDER}, PrivateKey: key}
	return nil
}

// Fingerprint is the CA certificate's SHA-256, as the join file carries it.
func (p *clusterPKI) Fingerprint() string { return api.CAFingerprint(p.caDER) }

// CAPEM is the CA certificate in PEM.
func (p *clusterPKI) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.caDER}))
}

// tlsConfig serves the server certificate and verifies the client
// certificates that agents present (users present none: they send a token).
func (p *clusterPKI) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		// HTTP/2 first: an agent cuts its waiting sync short whenever it
		// has a new outcome; over HTTP/1.1 that closed the connection, so
		// nearly every job cost a TLS handshake on both sides (the top of
		// both CPU profiles at 1,000 nodes). An HTTP/2 stream is reset
		// and the connection stays.
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// checkSecret compares a join secret in constant time.
func (p *clusterPKI) checkSecret(s string) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(p.secret)) == 1
}

// signAgent signs the CSR of node name's agent: a client certificate for
// that name only.
func (p *clusterPKI) signAgent(name, csrPEM string) (certPEM, serial string, err error) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return "", "", refuse(400, "join: the CSR is not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "", "", refuse(400, "join: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return "", "", refuse(400, "join: CSR signature: %v", err)
	}
	sn := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"hpc agent"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(agentCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, csr.PublicKey, p.caKey)
	if err != nil {
		return "", "", fmt.Errorf("sign agent certificate: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), serialHex(sn), nil
}

func (p *clusterPKI) isRevoked(serial string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.revoked[serial]
	return ok
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func serialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

func readPair(crtPath, keyPath string) ([]byte, *ecdsa.PrivateKey, error) {
	crt, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(crt)
	if b == nil {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", crtPath)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	k, _ := pem.Decode(kb)
	if k == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyPath)
	}
	key, err := x509.ParseECPrivateKey(k.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return b.Bytes, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key or join file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
