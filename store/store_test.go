package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestCreateJobsSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hpc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.CreateJobs(3, func(id uint64, i int) ([]byte, error) {
		return []byte(fmt.Sprintf("job-%d-%d", id, i)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[1 2 3]" {
		t.Fatalf("ids = %v, want [1 2 3]", ids)
	}
	if err := s.WriteJobs([]uint64{2}, func(uint64) ([]byte, bool, error) { return []byte("changed"), true, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := map[uint64]string{}
	if err := s.Jobs(func(id uint64, data []byte) error { got[id] = string(data); return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{1: "job-1-0", 2: "changed", 3: "job-3-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen got %v, want %v", got, want)
	}
	more, err := s.CreateJobs(1, func(id uint64, i int) ([]byte, error) { return []byte("x"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if more[0] != 4 {
		t.Fatalf("id sequence restarted: got %d, want 4", more[0])
	}
}

func TestCreateJobsAllOrNothing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("boom")
	_, err = s.CreateJobs(5, func(id uint64, i int) ([]byte, error) {
		if i == 3 {
			return nil, boom
		}
		return []byte("x"), nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	n := 0
	s.Jobs(func(uint64, []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d jobs stored after a failed create, want 0", n)
	}
	ids, _ := s.CreateJobs(1, func(uint64, int) ([]byte, error) { return []byte("x"), nil })
	if ids[0] != 1 {
		t.Fatalf("failed create consumed ids: next id %d", ids[0])
	}
}

func TestConcurrentCreatesGetDistinctIDs(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				ids, err := s.CreateJobs(2, func(uint64, int) ([]byte, error) { return []byte("x"), nil })
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					if seen[id] {
						t.Errorf("id %d handed out twice", id)
					}
					seen[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 400 {
		t.Fatalf("%d distinct ids, want 400", len(seen))
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hpc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
}

func TestNodesRoundTrip(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []string{"gpu02", "cpu01"} {
		if err := s.PutNode(n, []byte(n+"-data")); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	s.Nodes(func(name string, data []byte) error { names = append(names, name+"="+string(data)); return nil })
	if fmt.Sprint(names) != "[cpu01=cpu01-data gpu02=gpu02-data]" {
		t.Fatalf("nodes = %v", names)
	}
}

func TestWriteJobsEncodesInsideTransaction(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hpc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, _ := s.CreateJobs(2, func(uint64, int) ([]byte, error) { return []byte("v0"), nil })
	err = s.WriteJobs(ids, func(id uint64) ([]byte, bool, error) {
		if id == ids[1] {
			return nil, false, nil // skipped: keeps v0
		}
		return []byte("v1"), true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]string{}
	s.Jobs(func(id uint64, d []byte) error { got[id] = string(d); return nil })
	if got[ids[0]] != "v1" || got[ids[1]] != "v0" {
		t.Fatalf("got %v", got)
	}
}
