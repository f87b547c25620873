package store

import (
	"bytes"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Jobs created submit after submit (several per commit, as group commit
// and arrays make them) fill the jobs bucket's pages: with bbolt's default
// fill (half) every page of pending jobs stayed half empty, and the
// server's memory map of the store touched twice the pages.
func TestCreateJobsFillsPages(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := bytes.Repeat([]byte("x"), 700) // a pending job's record
	for i := 0; i < 100; i++ {
		if _, err := s.CreateJobs(10, func(uint64, int) ([]byte, error) { return rec, nil }); err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketJobs).Stats()
		if used := float64(st.LeafInuse) / float64(st.LeafAlloc); used < 0.8 {
			t.Errorf("the jobs bucket's leaf pages are %.0f%% used (%d of %d bytes), want at least 80%%", 100*used, st.LeafInuse, st.LeafAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
