package store

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var archiveT0 = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)

// archiveFixture stores live jobs 1..6 and archives them: job i ended i
// hours after archiveT0; odd ids belong to alice/physics, even to bob/bio.
func archiveFixture(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateJobs(6, func(id uint64, _ int) ([]byte, error) { return []byte("live"), nil }); err != nil {
		t.Fatal(err)
	}
	var recs []ArchiveRecord
	for id := uint64(1); id <= 6; id++ {
		user, account := "alice", "physics"
		if id%2 == 0 {
			user, account = "bob", "bio"
		}
		recs = append(recs, ArchiveRecord{ID: id, End: archiveT0.Add(time.Duration(id) * time.Hour), User: user, Account: account,
			Summary: []byte(fmt.Sprintf("sum%d", id)), Data: []byte(fmt.Sprintf("rec%d", id))})
	}
	if err := s.Archive(recs, map[string][]byte{"fairshare/physics": []byte("1.5")}); err != nil {
		t.Fatal(err)
	}
	return s
}

func scanIDs(t *testing.T, s *Store, q ArchiveScan, limit int) (ids []uint64, summaries, records []string) {
	t.Helper()
	err := s.ScanArchive(q, func(e ArchiveEntry) (bool, error) {
		ids = append(ids, e.Key.ID)
		summaries = append(summaries, string(e.Summary))
		records = append(records, string(e.Record()))
		return len(ids) < limit, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, summaries, records
}

func TestArchiveMovesJobsOutOfTheLiveSet(t *testing.T) {
	s := archiveFixture(t)
	n := 0
	if err := s.Jobs(func(uint64, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d live jobs left after archiving all", n)
	}
	data, ok, err := s.ArchivedJob(4)
	if err != nil || !ok || string(data) != "rec4" {
		t.Errorf("ArchivedJob(4) = %q, %v, %v; want rec4", data, ok, err)
	}
	if _, ok, _ := s.ArchivedJob(99); ok {
		t.Error("ArchivedJob(99) found a job never archived")
	}
	usage := map[string]string{}
	if err := s.Usage(func(k string, v []byte) error { usage[k] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if usage["fairshare/physics"] != "1.5" {
		t.Errorf("usage = %v, want the entry stored with the archive", usage)
	}
}

func TestScanArchive(t *testing.T) {
	s := archiveFixture(t)
	h := func(n int) time.Time { return archiveT0.Add(time.Duration(n) * time.Hour) }
	tests := []struct {
		name string
		q    ArchiveScan
		want []uint64
	}{
		{"everything in end order", ArchiveScan{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"since is inclusive, until exclusive", ArchiveScan{Since: h(2), Until: h(5)}, []uint64{2, 3, 4}},
		{"by user", ArchiveScan{User: "alice"}, []uint64{1, 3, 5}},
		{"by user and time", ArchiveScan{User: "bob", Since: h(3)}, []uint64{4, 6}},
		{"by account", ArchiveScan{Account: "bio", Until: h(6)}, []uint64{2, 4}},
		{"unknown user", ArchiveScan{User: "ali"}, nil},
		{"after a cursor", ArchiveScan{After: &ArchiveKey{End: h(3), ID: 3}}, []uint64{4, 5, 6}},
		{"cursor before since", ArchiveScan{Since: h(5), After: &ArchiveKey{End: h(1), ID: 1}}, []uint64{5, 6}},
		{"user after a cursor", ArchiveScan{User: "alice", After: &ArchiveKey{End: h(1), ID: 1}}, []uint64{3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, sums, recs := scanIDs(t, s, tt.q, 100)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
			for i, id := range ids {
				if sums[i] != fmt.Sprintf("sum%d", id) || recs[i] != fmt.Sprintf("rec%d", id) {
					t.Errorf("job %d: summary %q record %q", id, sums[i], recs[i])
				}
			}
		})
	}
	if ids, _, _ := scanIDs(t, s, ArchiveScan{}, 2); !slices.Equal(ids, []uint64{1, 2}) {
		t.Errorf("a scan that stops after 2 visited %v", ids)
	}
}

func TestPurgeArchive(t *testing.T) {
	s := archiveFixture(t)
	n, err := s.PurgeArchive(archiveT0.Add(4*time.Hour), 2)
	if err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2 (the limit)", n, err)
	}
	n, err = s.PurgeArchive(archiveT0.Add(4*time.Hour), 100)
	if err != nil || n != 1 {
		t.Fatalf("second purge = %d, %v; want 1", n, err)
	}
	for _, q := range []ArchiveScan{{}, {User: "alice"}, {User: "bob"}, {Account: "physics"}, {Account: "bio"}} {
		ids, _, recs := scanIDs(t, s, q, 100)
		for i, id := range ids {
			if id < 4 || recs[i] == "" {
				t.Errorf("%+v: job %d (record %q) survived the purge", q, id, recs[i])
			}
		}
	}
	if _, ok, _ := s.ArchivedJob(3); ok {
		t.Error("job 3's record survived the purge")
	}
	if ids, _, _ := scanIDs(t, s, ArchiveScan{}, 100); !slices.Equal(ids, []uint64{4, 5, 6}) {
		t.Errorf("left %v, want [4 5 6]", ids)
	}
}

// A job is archived once: a second record of an archived id (a retried
// batch, or the same job twice in one batch) adds no second listing under
// any index, even with another end time, and leaves the first record.
func TestArchiveKeepsTheFirstRecordOfAJob(t *testing.T) {
	s := archiveFixture(t)
	again := ArchiveRecord{ID: 3, End: archiveT0.Add(9 * time.Hour), User: "alice", Account: "physics", Summary: []byte("sum3 again"), Data: []byte("rec3 again")}
	fresh := ArchiveRecord{ID: 7, End: archiveT0.Add(7 * time.Hour), User: "alice", Account: "physics", Summary: []byte("sum7"), Data: []byte("rec7")}
	twice := fresh
	twice.End, twice.Summary, twice.Data = archiveT0.Add(8*time.Hour), []byte("sum7 twice"), []byte("rec7 twice")
	if err := s.Archive([]ArchiveRecord{again, fresh, twice}, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []ArchiveScan{{}, {User: "alice"}, {Account: "physics"}} {
		ids, sums, _ := scanIDs(t, s, q, 100)
		want := []uint64{1, 2, 3, 4, 5, 6, 7}
		if q.User != "" || q.Account != "" {
			want = []uint64{1, 3, 5, 7}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("scan %+v = %v, want %v", q, ids, want)
		}
		for i, id := range ids {
			if sums[i] != fmt.Sprintf("sum%d", id) {
				t.Errorf("scan %+v: job %d summary %q, want the first record's", q, id, sums[i])
			}
		}
	}
	if data, _, _ := s.ArchivedJob(3); string(data) != "rec3" {
		t.Errorf("ArchivedJob(3) = %q, want the first record", data)
	}
}
