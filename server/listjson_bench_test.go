package server

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// BenchmarkList100k answers GET /v1/jobs (brief: what `hpcsub queue`
// asks; full: `--json`) over 100,000 pending array tasks, handler only.
//
//	go test -run XXX -bench List100k -benchmem ./server/
func BenchmarkList100k(b *testing.B) {
	s := &Server{jobs: map[uint64]*job{}}
	spec := &jobSpec{Name: "cpu32", User: "root", Account: "root", Nodes: 1, CPUs: 32, Memory: 64 << 30, Walltime: 2 * time.Hour,
		Workdir: "/home/root/work", ArrayTaskCount: 1000, OutputPattern: "hpc-%A_%a.out"}
	now := time.Now()
	for i := 1; i <= 100_000; i++ {
		s.jobs[uint64(i)] = &job{jobSpec: spec, ID: uint64(i), ArrayJobID: uint64(i - (i-1)%1000), ArrayIndex: (i - 1) % 1000,
			State: api.StatePending, Reason: "submitted", Submit: now, waitReason: "Priority",
			History: []api.Transition{{Time: now, State: api.StatePending, Reason: "submitted"}}}
	}
	h := s.Handler()
	for _, view := range []string{"brief", "full"} {
		b.Run(view, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/v1/jobs?view="+view, nil)
				req = req.WithContext(context.WithValue(req.Context(), callerKey{}, Caller{}))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
