package server

import (
	"strings"
	"testing"
)

// Found as: a umask of 0xFFFFFFFF was accepted and masked to 0777, so the
// job's output was created with mode 000. It is refused at the API edge.
func TestSubmitUmaskBounded(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, tc := range []struct {
		umask  uint32
		status int
	}{
		{0xFFFFFFFF, 400},
		{0o1000, 400},
		{0o777, 201},
		{0o022, 201},
	} {
		req := h.submitReq(jobSrc(""))
		m := tc.umask
		req.Umask = &m
		status, body := h.as(nobody, "POST", "/v1/jobs", mustJSON(t, req))
		if status != tc.status {
			t.Errorf("umask %#o: HTTP %d %s, want %d", tc.umask, status, body, tc.status)
		}
		if status == 400 && !strings.Contains(string(body), "at most 0777") {
			t.Errorf("umask %#o: refusal %s does not say the bound", tc.umask, body)
		}
	}
	if n := h.jobCount(); n != 2 {
		t.Fatalf("%d jobs, want 2 (refused submits create nothing)", n)
	}
}
