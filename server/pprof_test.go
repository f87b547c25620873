package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPprofEndpoint: the profiles are served only when the server was
// started with them on, only to admins, and never over a token (HTTPS).
func TestPprofEndpoint(t *testing.T) {
	off := newHarness(t, testConfig())
	if code, _ := off.as(0, "GET", "/debug/pprof/heap", nil); code != http.StatusNotFound {
		t.Errorf("without Pprof: GET /debug/pprof/heap = %d, want 404", code)
	}
	cfg := testConfig()
	cfg.Pprof = true
	h := newHarness(t, cfg)
	for _, tc := range []struct {
		name  string
		uid   uint32
		token bool
		want  int
	}{
		{"root on the socket", 0, false, http.StatusOK},
		{"a user on the socket", 65534, false, http.StatusForbidden},
		{"root over a token", 0, true, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
			ctx := context.WithValue(req.Context(), callerKey{}, Caller{UID: tc.uid, GID: tc.uid})
			if tc.token {
				ctx = context.WithValue(ctx, viaTokenKey{}, true)
			}
			rec := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(rec, req.WithContext(ctx))
			if rec.Code != tc.want {
				t.Fatalf("GET /debug/pprof/heap = %d, want %d: %s", rec.Code, tc.want, rec.Body.Bytes())
			}
			// A heap profile is gzipped protobuf.
			if tc.want == http.StatusOK && !bytes.HasPrefix(rec.Body.Bytes(), []byte{0x1f, 0x8b}) {
				t.Errorf("the heap profile is not gzip data: %.40q", rec.Body.Bytes())
			}
		})
	}
}
