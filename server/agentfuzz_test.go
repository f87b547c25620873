package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// FuzzAgentProtocolDecode feeds arbitrary bodies through what the HTTPS
// agent routes do with them: decode (unknown fields refused), bound-check,
// then register or sync. Whatever the bytes, nothing panics, and a refused
// registration leaves the node registry as it was.
//
//	go test -run '^$' -fuzz FuzzAgentProtocolDecode -fuzztime 60s ./server/
func FuzzAgentProtocolDecode(f *testing.F) {
	good, _ := json.Marshal(api.RegisterRequest{Protocol: api.ProtocolVersion, AgentVersion: "x", Node: cpuNode("f1"), Held: []uint64{1, 2},
		Ended: []api.Outcome{{JobID: 1, State: api.StateCompleted}}, GPUHealth: []api.GPUHealth{{Index: 0, Healthy: true}}})
	sync, _ := json.Marshal(api.SyncRequest{Session: "s", Seq: 1, Ack: 3, Outcomes: []api.Outcome{{JobID: 7, State: api.StateFailed, ExitCode: 2}}})
	for _, seed := range [][]byte{good, sync, []byte(`{}`), []byte(`{"protocol":1,"node":{"name":"f2","cpu_ids":[0,1],"memory":1,"gpus":[{"index":0}],"links":[["X"]]}}`),
		[]byte(`{"protocol":1,"node":{"name":"f3","cpu_ids":[0],"memory":1,"gpus":[{"index":0},{"index":1}],"links":[[0,1],[1]]}}`),
		[]byte(`{"session":"s","seq":18446744073709551615,"wait":-1}`), []byte(`[`), []byte(`{"protocol":1} {}`)} {
		f.Add(seed)
	}
	st, err := store.Open(filepath.Join(f.TempDir(), "hpc.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	srv, err := New(testConfig(), st, quietLog())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", api.RouteAgentRegister, bytes.NewReader(body))
		var reg api.RegisterRequest
		if decodeBody(r, &reg) == nil {
			before := len(srv.apiNodes())
			_, err := srv.AgentRegister(ctx, AgentIdentity{Node: reg.Node.Name}, reg)
			if err != nil && len(srv.apiNodes()) != before {
				t.Fatalf("a refused registration (%v) changed the nodes", err)
			}
			if err == nil && reg.Node.Memory <= 0 {
				t.Fatalf("registration with memory %d accepted", reg.Node.Memory)
			}
		}
		r = httptest.NewRequest("POST", api.RouteAgentSync, bytes.NewReader(body))
		var sr api.SyncRequest
		if decodeBody(r, &sr) == nil {
			sr.Wait = 0 // never hold the fuzzer
			srv.AgentSync(ctx, AgentIdentity{Node: "f1"}, sr)
		}
	})
}
