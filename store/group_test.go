package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommitGathersWritesDuringACommit holds one commit open and
// queues writes meanwhile: they must all go in one following transaction,
// every caller returning only after its write is readable.
func TestGroupCommitGathersWritesDuringACommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.group.update(func(tx *bolt.Tx) error {
			close(entered)
			<-release
			return tx.Bucket(bucketBlobs).Put([]byte("first"), []byte("1"))
		})
	}()
	<-entered
	const n = 20
	var mu sync.Mutex
	txIDs := map[int]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%02d", i)
			err := s.group.update(func(tx *bolt.Tx) error {
				mu.Lock()
				txIDs[tx.ID()] = true
				mu.Unlock()
				return tx.Bucket(bucketBlobs).Put([]byte(key), []byte("v"))
			})
			if err == nil {
				err = s.db.View(func(tx *bolt.Tx) error {
					if tx.Bucket(bucketBlobs).Get([]byte(key)) == nil {
						return fmt.Errorf("%s not committed when its write returned", key)
					}
					return nil
				})
			}
			errs <- err
		}()
	}
	// Every writer is queued behind the open commit before it ends.
	for {
		s.group.mu.Lock()
		queued := len(s.group.pending)
		s.group.mu.Unlock()
		if queued == n {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(txIDs) != 1 {
		t.Fatalf("%d writes queued during one commit went in %d transactions, want 1", n, len(txIDs))
	}
}

// TestGroupCommitFailureIsTheCallersOwn: a write that fails inside a group
// gets its own error and changes nothing; the others of its group commit.
func TestGroupCommitFailureIsTheCallersOwn(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	go s.group.update(func(tx *bolt.Tx) error {
		close(entered)
		<-release
		return nil
	})
	<-entered
	bad := errors.New("refused")
	var wg sync.WaitGroup
	results := make([]error, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.group.update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketBlobs)
				if err := b.Put([]byte(fmt.Sprintf("k%d", i)), []byte("v")); err != nil {
					return err
				}
				if i == 3 {
					return bad
				}
				return nil
			})
		}()
	}
	for {
		s.group.mu.Lock()
		queued := len(s.group.pending)
		s.group.mu.Unlock()
		if queued == len(results) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(release)
	wg.Wait()
	for i, err := range results {
		want := error(nil)
		if i == 3 {
			want = bad
		}
		if !errors.Is(err, want) && err != want {
			t.Errorf("write %d: err = %v, want %v", i, err, want)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for i := range results {
			got := tx.Bucket(bucketBlobs).Get([]byte(fmt.Sprintf("k%d", i))) != nil
			if got != (i != 3) {
				t.Errorf("k%d stored = %v", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
