package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
)

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// An agent cuts its waiting sync short when it has a new outcome. That
// must not cost a new connection (and TLS handshake) each time: agent
// and server speak HTTP/2, where the cut resets one stream only.
func TestCutSyncKeepsTheConnection(t *testing.T) {
	th := newTLSHarness(t)
	creds, err := th.joinAs("h2")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	hs := &http.Server{Handler: th.srv.TLSHandler(), TLSConfig: th.srv.pki.tlsConfig(), ErrorLog: nil}
	go hs.Serve(tls.NewListener(counted, hs.TLSConfig))
	t.Cleanup(func() { hs.Close() })

	tr := agent.NewHTTPS("https://"+ln.Addr().String(), creds)
	resp, err := register(tr, "h2")
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := tr.Sync(ctx, api.SyncRequest{Session: resp.Session, Seq: seq, Wait: 10 * time.Second})
		cancel()
		if err == nil {
			t.Fatalf("sync %d: answered before the cut; the test needs a waiting sync", seq)
		}
	}
	if _, err := tr.Sync(context.Background(), api.SyncRequest{Session: resp.Session, Seq: 4}); err != nil {
		t.Fatalf("sync after the cuts: %v", err)
	}
	if n := counted.n.Load(); n != 1 {
		t.Fatalf("%d connections for one register and four syncs (three cut short), want 1", n)
	}
}
