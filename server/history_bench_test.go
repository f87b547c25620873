package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// benchArchive opens a server over a store whose archive holds n ended
// jobs, 10,000 a day, the newest ending now.
func benchArchive(b *testing.B, n int) *Server {
	st, err := store.Open(filepath.Join(b.TempDir(), "hpc.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	now := time.Now()
	const perDay = 10000
	for from := 0; from < n; from += 50000 {
		var recs []store.ArchiveRecord
		for i := from; i < min(n, from+50000); i++ {
			end := now.Add(-time.Duration(n-i) * (24 * time.Hour / perDay))
			start := end.Add(-90 * time.Second)
			j := &job{ID: uint64(i + 1), jobSpec: &jobSpec{Name: "sim", User: fmt.Sprintf("user%d", i%8), Account: fmt.Sprintf("acct%d", i%4),
				Walltime: time.Hour, CPUs: 1, Nodes: 1},
				State: api.StateCompleted, Submit: start, Start: &start, End: &end,
				Runs: []api.Run{{Nodes: []string{"n1"}, CPUs: 1, Start: start, End: end, State: api.StateCompleted,
					Usage: api.Usage{ElapsedSeconds: 90, CPUSeconds: 80, PeakMemory: 100 << 20}}},
				History: []api.Transition{{Time: start, State: api.StatePending, Reason: "submitted"}, {Time: start, State: api.StateRunning},
					{Time: end, State: api.StateCompleted, Reason: "exit code 0"}}}
			data, _ := json.Marshal(j.apiJob())
			recs = append(recs, store.ArchiveRecord{ID: j.ID, End: end, User: j.User, Account: j.Account, Summary: summarize(j).encode(), Data: data})
		}
		if err := st.Archive(recs, nil); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(testConfig(), st, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkHistoryHandler answers one page-by-page one-day history query
// (10,000 jobs, brief rows as `hpcsub history` asks) over an archive of
// HPC_BENCH_ARCHIVE jobs (default 100,000), in the server alone.
func BenchmarkHistoryHandler(b *testing.B) {
	n := 100_000
	if v := benchEnvInt("HPC_BENCH_ARCHIVE"); v > 0 {
		n = v
	}
	s := benchArchive(b, n)
	h := s.Handler()
	for _, q := range []string{"brief=1", "brief=1&user=user3", ""} {
		b.Run(q, func(b *testing.B) {
			rows := 0
			for i := 0; i < b.N; i++ {
				rows = 0
				after := ""
				for {
					since := time.Now().Add(-24 * time.Hour).Format(time.RFC3339Nano)
					url := api.RouteHistory + "?limit=10000&since=" + since + "&" + q
					if after != "" {
						url += "&after=" + after
					}
					r := httptest.NewRequest(http.MethodGet, url, nil)
					r = r.WithContext(contextWithCaller(r, Caller{UID: 0}))
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					var page api.History
					if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
						b.Fatal(err, w.Body.String())
					}
					rows += len(page.Jobs)
					if page.TSV != "" {
						r, err := api.ParseHistoryTSV(page.TSV)
						if err != nil {
							b.Fatal(err)
						}
						rows += len(r)
					}
					if after = page.Next; after == "" {
						break
					}
				}
			}
			b.ReportMetric(float64(rows), "jobs")
		})
	}
}

func contextWithCaller(r *http.Request, c Caller) context.Context {
	return context.WithValue(r.Context(), callerKey{}, c)
}

func benchEnvInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}
