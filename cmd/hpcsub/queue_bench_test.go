package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// BenchmarkQueue100k is `hpcsub queue`'s own side of a 100,000-job queue:
// decoding the brief list and printing the table (the server's answer is
// prepared once). The whole path is measured by
// agent/virtual's BenchmarkQueue.
func BenchmarkQueue100k(b *testing.B) {
	tsv := []byte(api.BriefColumns + "\n")
	start := testNow.Add(-time.Hour)
	for i := range 100_000 {
		idx := i % 1000
		j := api.JobBrief{ID: uint64(i + 1), ArrayJobID: uint64(i/1000*1000 + 1), Name: "sweep", User: "alice", State: api.StatePending, Reason: "Resources", ArrayIndex: &idx, NodesWanted: 1}
		if i < 1000 {
			j.State, j.Reason, j.StartTime, j.Nodes = api.StateRunning, "", &start, []string{fmt.Sprintf("cpu-%04d", i)}
		}
		tsv = j.AppendTSV(tsv)
	}
	body, err := json.Marshal(api.JobList{TSV: string(tsv)})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	ts.Listener = ln
	ts.Start()
	defer ts.Close()
	b.Setenv(api.EnvAddr, "unix://"+sock)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code := runContext(b.Context(), []string{"queue"}, io.Discard, io.Discard, func() time.Time { return testNow }); code != 0 {
			b.Fatalf("hpcsub queue exited %d", code)
		}
	}
	b.ReportMetric(float64(len(body))/(1<<20), "list-MiB")
}
