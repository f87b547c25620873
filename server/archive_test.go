package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// endJob runs job id to the given end state, its outcome ending at end.
func (h *harness) endJob(id uint64, state api.JobState, code int, end time.Time) {
	h.t.Helper()
	h.schedule()
	if st := h.state(id); st != api.StateRunning {
		h.t.Fatalf("job %d is %s, want RUNNING", id, st)
	}
	h.srv.Report(api.Outcome{JobID: id, Node: h.reg.Name, State: state, ExitCode: code, Reason: "test outcome",
		Start: end.Add(-time.Minute), End: end, Usage: api.Usage{ElapsedSeconds: 60, CPUSeconds: 30, PeakMemory: 1 << 20}})
}

func historyIDs(h api.History) []uint64 {
	var ids []uint64
	for _, j := range h.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

func TestEndedJobsMoveToTheArchive(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	now := time.Now()
	a := h.submit(jobSrc(`  account = "physics"`))[0]
	b := h.submit(jobSrc(`  account = "bio"`))[0]
	live := h.submit(jobSrc(`  account = "bio"`))[0]
	if _, err := h.client.Hold(ctx, live); err != nil {
		t.Fatal(err)
	}
	h.endJob(a, api.StateCompleted, 0, now.Add(-2*time.Hour))
	h.endJob(b, api.StateFailed, 3, now.Add(-time.Hour))

	// Ended but not yet archived: history already shows them.
	hist, err := h.client.History(ctx, api.HistoryQuery{})
	if err != nil || !slices.Equal(historyIDs(hist), []uint64{a, b}) {
		t.Fatalf("history before archiving = %v, %v; want [%d %d]", historyIDs(hist), err, a, b)
	}

	h.srv.archiveEnded(now)
	if n := h.jobCount(); n != 1 {
		t.Errorf("%d jobs live after archiving, want 1 (the held one)", n)
	}
	stored := 0
	h.st.Jobs(func(uint64, []byte) error { stored++; return nil })
	if stored != 1 {
		t.Errorf("%d jobs in the live bucket, want 1", stored)
	}

	// Archived jobs still answer show, wait and cancel as ended jobs do.
	j, err := h.client.Job(ctx, b)
	if err != nil || j.State != api.StateFailed || j.ExitCode == nil || *j.ExitCode != 3 || len(j.Runs) != 1 || j.Account != "bio" {
		t.Errorf("show archived job = %+v, %v", j, err)
	}
	if j, err := h.client.Wait(ctx, a); err != nil || j.State != api.StateCompleted {
		t.Errorf("wait on archived job = %s, %v", j.State, err)
	}
	if _, err := h.client.Cancel(ctx, a); apiStatus(err) != 409 {
		t.Errorf("cancel of an archived job: %v, want 409", err)
	}
	// Another user is refused as for a live job, and not told how it ended.
	if status, body := h.as(4242, "POST", fmt.Sprintf("/v1/jobs/%d/cancel", a), nil); status != 403 || strings.Contains(string(body), "COMPLETED") {
		t.Errorf("another user's cancel of an archived job: %d %s; want 403 without its state", status, body)
	}
	if _, err := h.client.Job(ctx, 999); apiStatus(err) != 404 {
		t.Errorf("show of an unknown job: %v, want 404", err)
	}

	tests := []struct {
		name string
		q    api.HistoryQuery
		want []uint64
	}{
		{"last day", api.HistoryQuery{}, []uint64{a, b}},
		{"by account", api.HistoryQuery{Account: "bio"}, []uint64{b}},
		{"by state", api.HistoryQuery{States: []api.JobState{api.StateCompleted}}, []uint64{a}},
		{"by user", api.HistoryQuery{User: "root"}, []uint64{a, b}},
		{"other user", api.HistoryQuery{User: "nobody"}, nil},
		{"window", api.HistoryQuery{Since: now.Add(-90 * time.Minute), Until: now}, []uint64{b}},
		{"before the window", api.HistoryQuery{Since: now.Add(-5 * time.Hour), Until: now.Add(-3 * time.Hour)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.client.History(ctx, tt.q)
			if err != nil || !slices.Equal(historyIDs(got), tt.want) || got.Next != "" {
				t.Errorf("history = %v next %q, %v; want %v", historyIDs(got), got.Next, err, tt.want)
			}
		})
	}

	// Pages: one job each, the cursor leads on.
	p1, err := h.client.History(ctx, api.HistoryQuery{Limit: 1})
	if err != nil || !slices.Equal(historyIDs(p1), []uint64{a}) || p1.Next == "" {
		t.Fatalf("page 1 = %v next %q, %v", historyIDs(p1), p1.Next, err)
	}
	p2, err := h.client.History(ctx, api.HistoryQuery{Limit: 1, After: p1.Next})
	if err != nil || !slices.Equal(historyIDs(p2), []uint64{b}) || p2.Next != "" {
		t.Fatalf("page 2 = %v next %q, %v", historyIDs(p2), p2.Next, err)
	}

	rep, err := h.client.Usage(ctx, "account", time.Time{}, time.Time{})
	if err != nil || len(rep.Rows) != 2 {
		t.Fatalf("usage = %+v, %v", rep, err)
	}
	for _, r := range rep.Rows {
		if r.Jobs != 1 || r.Runs != 1 || r.CPUHours != 30.0/3600 || r.AllocCPUHours != 60.0/3600 {
			t.Errorf("usage row %+v: want 1 job, 30 CPU-s used, 60 CPU-s allocated", r)
		}
	}
	if rep.Rows[0].Key != "bio" || rep.Rows[1].Key != "physics" {
		t.Errorf("rows %v, want bio then physics", rep.Rows)
	}

	// The archive and the fair-share usage survive a restart; ended jobs
	// are not loaded into the live set again.
	h.restart(&fakeAgent{})
	if n := h.jobCount(); n != 1 {
		t.Errorf("%d jobs live after restart, want 1", n)
	}
	if got, err := h.client.History(ctx, api.HistoryQuery{}); err != nil || len(got.Jobs) != 2 {
		t.Errorf("history after restart: %v, %v", historyIDs(got), err)
	}
	h.srv.mu.Lock()
	u := h.srv.shares.usage["bio"]
	h.srv.mu.Unlock()
	if u.Value != 60 {
		t.Errorf("bio's stored usage %+v, want 60 CPU-seconds", u)
	}
}

func TestHistoryRefusesBadQueries(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	now := time.Now()
	for name, q := range map[string]api.HistoryQuery{
		"live state":         {States: []api.JobState{"RUNNING"}},
		"until before since": {Since: now, Until: now.Add(-time.Hour)},
		"bad cursor":         {After: "nope"},
		"limit too big":      {Limit: historyPageMax + 1},
	} {
		if _, err := h.client.History(ctx, q); apiStatus(err) != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	if _, err := h.client.Usage(ctx, "planet", time.Time{}, time.Time{}); apiStatus(err) != 400 {
		t.Errorf("usage by planet: %v, want 400", err)
	}
}

func TestArchiveRetention(t *testing.T) {
	cfg := testConfig()
	cfg.ArchiveRetention = time.Hour
	h := newHarness(t, cfg)
	ctx := context.Background()
	now := time.Now()
	old := h.submit(jobSrc(""))[0]
	recent := h.submit(jobSrc(""))[0]
	h.endJob(old, api.StateCompleted, 0, now.Add(-2*time.Hour))
	h.endJob(recent, api.StateCompleted, 0, now.Add(-time.Minute))
	h.srv.archiveEnded(now)
	got, err := h.client.History(ctx, api.HistoryQuery{Since: now.Add(-24 * time.Hour)})
	if err != nil || !slices.Equal(historyIDs(got), []uint64{recent}) {
		t.Errorf("history after retention = %v, %v; want only %d", historyIDs(got), err, recent)
	}
	if _, err := h.client.Job(ctx, old); apiStatus(err) != 404 {
		t.Errorf("a job past retention: %v, want 404", err)
	}
}

func TestSummaryRoundTrip(t *testing.T) {
	code := 3
	tests := []archiveSummary{
		{State: api.StateFailed, Name: "tab\there", Exit: &code, Signal: "SIGKILL", Runs: 2, Elapsed: 1.5, CPU: 0.25, PeakMem: 1 << 20, GPU: 7, Alloc: 3},
		{State: api.StateCancelled},
	}
	for _, sum := range tests {
		got, err := decodeSummary(sum.encode())
		if err != nil {
			t.Fatalf("%+v: %v", sum, err)
		}
		want := sum
		want.Name = strings.ReplaceAll(want.Name, "\t", " ")
		if (got.Exit == nil) != (want.Exit == nil) || (got.Exit != nil && *got.Exit != *want.Exit) {
			t.Errorf("exit %v, want %v", got.Exit, want.Exit)
		}
		got.Exit, want.Exit = nil, nil
		if got != want {
			t.Errorf("round trip %+v, want %+v", got, want)
		}
		if summaryState(sum.encode()) != sum.State {
			t.Errorf("summaryState = %s", summaryState(sum.encode()))
		}
	}
	if _, err := decodeSummary([]byte("COMPLETED\tx")); err == nil {
		t.Error("a short summary decoded")
	}
}

// The brief history lines `hpcsub history` prints carry the same as the
// whole records.
func TestBriefHistory(t *testing.T) {
	h := newHarness(t, testConfig())
	now := time.Now()
	a := h.submit(jobSrc(`  account = "physics"`))[0]
	b := h.submit(jobSrc(""))[0]
	h.endJob(a, api.StateFailed, 2, now.Add(-time.Hour))
	h.endJob(b, api.StateCompleted, 0, now.Add(-time.Minute))
	h.srv.archiveEnded(now.Add(-30 * time.Minute)) // a is archived, b still live
	for _, q := range []api.HistoryQuery{{Brief: true}, {Brief: true, Limit: 1}} {
		page, err := h.client.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := api.ParseHistoryTSV(page.TSV)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if q.Limit == 1 {
			want = 1
		}
		if len(rows) != want || (q.Limit == 1) != (page.Next != "") {
			t.Fatalf("limit %d: %d rows, next %q", q.Limit, len(rows), page.Next)
		}
		r := rows[0]
		if r.ID != a || r.Account != "physics" || r.User != "root" || r.State != api.StateFailed || r.ExitCode == nil || *r.ExitCode != 2 ||
			r.Runs != 1 || r.ElapsedSeconds != 60 || r.CPUSeconds != 30 || r.PeakMemory != 1<<20 || r.AllocCPUSecs != 60 || !r.EndTime.Equal(now.Add(-time.Hour)) {
			t.Errorf("row %+v", r)
		}
		if len(rows) == 2 && (rows[1].ID != b || rows[1].State != api.StateCompleted) {
			t.Errorf("second row %+v", rows[1])
		}
	}
}
