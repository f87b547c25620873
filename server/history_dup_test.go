package server

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// archiveCommitted writes job id's archive record to the store as an
// archive pass does, without taking it out of the live set: the state a
// history listing sees when it reads between a pass's store commit and
// the pass removing the jobs from memory (or when its live snapshot was
// taken just before the commit and its archive scan just after).
func (h *harness) archiveCommitted(id uint64) {
	h.t.Helper()
	h.srv.mu.Lock()
	j := h.srv.jobs[id]
	if j == nil || j.End == nil {
		h.srv.mu.Unlock()
		h.t.Fatalf("job %d is not an ended live job", id)
	}
	data, err := json.Marshal(j.apiJob())
	rec := store.ArchiveRecord{ID: j.ID, End: *j.End, User: j.User, Account: j.Account, Summary: summarize(j).encode(), Data: data}
	h.srv.mu.Unlock()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.Archive([]store.ArchiveRecord{rec}, nil); err != nil {
		h.t.Fatal(err)
	}
}

// A job that is both in the archive and still in the live set (an
// archive pass racing a listing) is listed and counted once. Before the
// fix the merge compared end times with ==, which never holds between a
// live time and one read back from the archive, so it listed [1 2 3 3].
func TestHistoryListsAJobBeingArchivedOnce(t *testing.T) {
	h := newHarness(t, testConfig())
	ctx := context.Background()
	now := time.Now()
	ids := h.submit(jobSrc(`  account = "physics"`))
	ids = append(ids, h.submit(jobSrc(`  account = "physics"`))...)
	ids = append(ids, h.submit(jobSrc(`  account = "physics"`))...)
	for i, id := range ids {
		h.endJob(id, api.StateCompleted, 0, now.Add(time.Duration(i-10)*time.Minute))
	}
	h.srv.archiveEnded(now) // the first two are archived...
	last := h.submit(jobSrc(`  account = "physics"`))[0]
	h.endJob(last, api.StateCompleted, 0, now.Add(-time.Minute))
	h.archiveCommitted(last) // ...the last one is caught mid-pass
	want := append(slices.Clone(ids), last)

	hist, err := h.client.History(ctx, api.HistoryQuery{})
	if err != nil || !slices.Equal(historyIDs(hist), want) {
		t.Errorf("history = %v, %v; want %v", historyIDs(hist), err, want)
	}
	// Paged one at a time, by cursor: still each job once.
	var paged []uint64
	q := api.HistoryQuery{Limit: 1}
	for range 10 {
		p, err := h.client.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, historyIDs(p)...)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if !slices.Equal(paged, want) {
		t.Errorf("history paged by 1 = %v, want %v", paged, want)
	}
	rep, err := h.client.Usage(ctx, "account", time.Time{}, time.Time{})
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].Jobs != len(want) {
		t.Errorf("usage = %+v, %v; want one row of %d jobs", rep.Rows, err, len(want))
	}

	// The pass then finishes: nothing changes in what is listed.
	h.srv.archiveEnded(now)
	hist, err = h.client.History(ctx, api.HistoryQuery{})
	if err != nil || !slices.Equal(historyIDs(hist), want) {
		t.Errorf("history after the pass = %v, %v; want %v", historyIDs(hist), err, want)
	}
}
