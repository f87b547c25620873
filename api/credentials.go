package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// Credentials are what `hpcsub login` stores for reaching the server over
// HTTPS: the user's token and the cluster CA to trust the server with.
type Credentials struct {
	Token   string   `json:"token"`
	User    string   `json:"user"`
	CA      string   `json:"ca"`
	Servers []string `json:"servers,omitempty"`
}

// CredentialsPath is where they live: $XDG_CONFIG_HOME/hpc or
// ~/.config/hpc, file credentials.json.
func CredentialsPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for the credentials: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "hpc", "credentials.json"), nil
}

// SaveCredentials writes a token answer to CredentialsPath, readable by the
// user only (0600 in a 0700 directory), and returns the path.
func SaveCredentials(t TokenResponse) (string, error) {
	path, err := CredentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(Credentials{Token: t.Token, User: t.User, CA: t.CA, Servers: t.Servers}, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // past the umask
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// LoadCredentials reads the stored credentials; a file others can read is
// refused, since the token is as good as the user's password.
func LoadCredentials() (Credentials, error) {
	var c Credentials
	path, err := CredentialsPath()
	if err != nil {
		return c, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return c, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return c, fmt.Errorf("%s is readable by others: chmod 600 it, or run `hpcsub login` again", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// httpsTransport trusts the cluster CA of the stored credentials (and the
// system's roots otherwise) and returns the token to send.
func httpsTransport() (*http.Transport, string, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c, err := LoadCredentials()
	if errors.Is(err, os.ErrNotExist) {
		return tr, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if c.CA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, "", errors.New("stored credentials: the cluster CA is not a PEM certificate; run `hpcsub login` again")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, c.Token, nil
}

// Token asks the server (or a node's agent) on a local Unix socket for a
// token for the calling user.
func (c *Client) Token(ctx context.Context) (TokenResponse, error) {
	var t TokenResponse
	err := c.do(ctx, http.MethodPost, RouteToken, nil, nil, &t)
	return t, err
}

// RemoveNode forgets a drained node and revokes its agent (admins only).
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, nodeRoute(RouteNodeRemove, name), nil, nil, nil)
}

// ResumeGPU returns one drained GPU of a node to service (admins only).
func (c *Client) ResumeGPU(ctx context.Context, name string, gpu int) (Node, error) {
	var n Node
	err := c.do(ctx, http.MethodPost, nodeRoute(RouteNodeResume, name), nil, ResumeRequest{GPU: &gpu}, &n)
	return n, err
}

// tlsHint says what to do when the server's certificate is not trusted:
// the cluster CA comes with `hpcsub login`.
func tlsHint(err error) string {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &cv) {
		return "the server's certificate is not from a CA this client knows; run `hpcsub login` on a node of the cluster (it stores the cluster CA and your token)"
	}
	return ""
}
