package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
)

// tlsHarness is a server with its HTTPS listener on loopback.
type tlsHarness struct {
	*harness
	dataDir string
	addr    string // https://127.0.0.1:port
	join    api.JoinFile
}

func newTLSHarness(t *testing.T) *tlsHarness { return newTLSHarnessWith(t, testConfig()) }

func newTLSHarnessWith(t *testing.T, cfg Config) *tlsHarness {
	h := protoHarness(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	th := &tlsHarness{harness: h, dataDir: t.TempDir(), addr: "https://" + ln.Addr().String()}
	conf, err := h.srv.EnableAgentTLS(th.dataDir, []string{th.addr})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h.srv.TLSHandler(), ErrorLog: nil}
	go hs.Serve(tls.NewListener(ln, conf))
	t.Cleanup(func() { hs.Close() })
	st, err := os.Stat(filepath.Join(th.dataDir, "agent-join"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("agent-join: %v mode %v", err, st.Mode())
	}
	if th.join, err = agent.LoadJoinFile(filepath.Join(th.dataDir, "agent-join")); err != nil {
		t.Fatal(err)
	}
	if len(th.join.Servers) != 1 || th.join.Servers[0] != th.addr {
		t.Fatalf("join file servers %v", th.join.Servers)
	}
	return th
}

func (th *tlsHarness) joinAs(name string) (agent.Credentials, error) {
	return agent.Join(context.Background(), th.join, th.addr, name, th.t.TempDir())
}

func register(tr agent.Transport, name string) (api.RegisterResponse, error) {
	return tr.Register(context.Background(), api.RegisterRequest{Protocol: api.ProtocolVersion, Node: cpuNode(name)})
}

func TestJoinAndMutualTLS(t *testing.T) {
	th := newTLSHarness(t)
	creds, err := th.joinAs("a1")
	if err != nil {
		t.Fatal(err)
	}
	tr := agent.NewHTTPS(th.addr, creds)
	resp, err := register(tr, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sync(context.Background(), api.SyncRequest{Session: resp.Session, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// The certificate is for a1 only.
	if _, err := register(tr, "a2"); !errors.Is(err, api.ErrAgentRefused) || !strings.Contains(err.Error(), "certificate is for node") {
		t.Errorf("registering another name: %v", err)
	}
	// A second agent may not join under a1's name.
	if _, err := th.joinAs("a1"); !errors.Is(err, api.ErrAgentRefused) || !strings.Contains(err.Error(), "already joined") {
		t.Errorf("second join as a1: %v", err)
	}

	cases := []struct {
		name string
		join func() (agent.Credentials, error)
		want string
	}{
		{"wrong secret", func() (agent.Credentials, error) {
			jf := th.join
			jf.Secret = strings.Repeat("0", 64)
			return agent.Join(context.Background(), jf, th.addr, "b1", t.TempDir())
		}, "wrong cluster secret"},
		{"wrong CA fingerprint", func() (agent.Credentials, error) {
			jf := th.join
			jf.CAFingerprint = "sha256:" + strings.Repeat("ab", 32)
			return agent.Join(context.Background(), jf, th.addr, "b2", t.TempDir())
		}, "not from this cluster's CA"},
	}
	for _, c := range cases {
		if _, err := c.join(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if n := len(th.srv.apiNodes()); n != 1 {
		t.Errorf("%d nodes after refused joins, want 1", n)
	}
}

func TestAgentRoutesRefuseWithoutCertificate(t *testing.T) {
	th := newTLSHarness(t)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, route := range []string{api.RouteAgentRegister, api.RouteAgentSync, api.RouteAgentToken} {
		resp, err := cl.Post(th.addr+route, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a certificate: %d", route, resp.StatusCode)
		}
	}
	// Users without a token get nothing either.
	resp, err := cl.Get(th.addr + api.RouteNodes)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("nodes without a token: %d", resp.StatusCode)
	}
}

func TestAgentBodiesAreChecked(t *testing.T) {
	th := newTLSHarness(t)
	creds, err := th.joinAs("a1")
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: creds.TLSConfig()}}
	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"unknown field", `{"protocol":1,"node":{"name":"a1","cpu_ids":[0],"memory":1024},"evil":true}`, 400},
		{"malformed", `{"protocol":1,`, 400},
		{"trailing data", `{"protocol":1} {}`, 400},
		{"absurd values", `{"protocol":1,"node":{"name":"a1","cpu_ids":[-5],"memory":-1}}`, 400},
		{"oversized", `{"protocol":1,"agent_version":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413},
	} {
		resp, err := cl.Post(th.addr+api.RouteAgentRegister, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !bytes.Contains(msg, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d with a reason", c.name, resp.StatusCode, msg, c.status)
		}
	}
	if n := len(th.srv.apiNodes()); n != 0 {
		t.Errorf("refused registrations made %d nodes", n)
	}
}

func TestRemovedNodeIsRevoked(t *testing.T) {
	th := newTLSHarness(t)
	creds, err := th.joinAs("a1")
	if err != nil {
		t.Fatal(err)
	}
	tr := agent.NewHTTPS(th.addr, creds)
	resp, err := register(tr, "a1")
	if err != nil {
		t.Fatal(err)
	}
	root := Caller{UID: 0}
	if err := th.srv.RemoveNode(Caller{UID: 4242}, "a1"); !errors.Is(err, ErrForbidden) {
		t.Errorf("non-admin remove: %v", err)
	}
	if err := th.srv.RemoveNode(root, "a1"); !errors.Is(err, ErrInvalidState) {
		t.Errorf("remove of an undrained node: %v", err)
	}
	if _, err := th.srv.DrainNode(root, "a1", "retire", false); err != nil {
		t.Fatal(err)
	}
	if err := th.srv.RemoveNode(root, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sync(context.Background(), api.SyncRequest{Session: resp.Session, Seq: 1}); !errors.Is(err, api.ErrAgentRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("sync with a revoked certificate: %v", err)
	}
	if _, err := register(tr, "a1"); !errors.Is(err, api.ErrAgentRefused) {
		t.Errorf("register with a revoked certificate: %v", err)
	}
	if n := len(th.srv.apiNodes()); n != 0 {
		t.Errorf("%d nodes after removal", n)
	}
	// The revocation is stored: a restarted server still refuses it, and
	// the name may be joined afresh.
	th.restart(nil)
	if _, err := th.srv.EnableAgentTLS(th.dataDir, []string{th.addr}); err != nil {
		t.Fatal(err)
	}
	th.srv.mu.Lock()
	revoked := th.srv.pki.isRevoked(serialHex(creds.Cert.Leaf.SerialNumber))
	th.srv.mu.Unlock()
	if !revoked {
		t.Error("revocation lost across a restart")
	}
}

func TestTokensOverTheSocketOnly(t *testing.T) {
	th := newTLSHarness(t)
	ctx := context.Background()
	tok, err := th.client.Token(ctx) // the Unix socket: the kernel says who we are
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.CA == "" || len(tok.Servers) != 1 {
		t.Fatalf("token answer %+v", tok)
	}
	get := func(token string) int {
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequest(http.MethodGet, th.addr+api.RouteNodes, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(tok.Token); st != http.StatusOK {
		t.Errorf("with the token: %d", st)
	}
	if st := get(strings.Repeat("a", 64)); st != http.StatusUnauthorized {
		t.Errorf("with a made-up token: %d", st)
	}
	// A token holder cannot mint more tokens over HTTPS.
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest(http.MethodPost, th.addr+api.RouteToken, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("token over https: %d", resp.StatusCode)
	}
	// The api client uses stored credentials for https addresses.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	path, err := api.SaveCredentials(tok)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v", st.Mode())
	}
	hc, err := api.NewClient(th.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Nodes(ctx); err != nil {
		t.Errorf("nodes over https with stored credentials: %v", err)
	}
}

func TestDrainGPU(t *testing.T) {
	h := protoHarness(t, testConfig())
	h.startNode("g1", func(r *api.NodeRegistration) {
		r.GPUs = []api.GPU{{Index: 0, Model: "H100", Memory: 80 << 30}, {Index: 1, Model: "H100", Memory: 80 << 30}}
	})
	root := Caller{}
	if _, err := h.srv.DrainGPU(root, "g1", 7, "XID 79"); !errors.Is(err, ErrNotFound) {
		t.Errorf("drain of a GPU the node lacks: %v", err)
	}
	if _, err := h.srv.DrainGPU(Caller{UID: 4242}, "g1", 1, "XID 79"); !errors.Is(err, ErrForbidden) {
		t.Errorf("non-admin GPU drain: %v", err)
	}
	n, err := h.srv.DrainGPU(root, "g1", 1, "XID 79")
	if err != nil {
		t.Fatal(err)
	}
	if n.GPUs[1].OutOfService != "drained: XID 79" || n.GPUs[0].OutOfService != "" || n.State != api.NodeIdle {
		t.Errorf("node after GPU drain: %+v", n)
	}
	// A 2-GPU job can never run now; 1-GPU jobs get GPU 0 only.
	id := h.submit(jobSrc("  resources {\n    gpu { count = 1 }\n  }"))[0]
	h.schedule()
	if j := h.job(id); j.State != api.StateRunning || len(j.Alloc[0].GPUs) != 1 || j.Alloc[0].GPUs[0] != 0 {
		t.Errorf("1-GPU job %s alloc %+v", j.State, j.Alloc)
	}
	h.restart(nil) // stored
	h.srv.mu.Lock()
	got := h.srv.nodes["g1"].GPUDrain[1]
	h.srv.mu.Unlock()
	if got != "XID 79" {
		t.Errorf("GPU drain after restart: %q", got)
	}
	if _, err := h.srv.ResumeGPU(root, "g1", 1); err != nil {
		t.Fatal(err)
	}
}
