// Package store keeps the server's durable state in an embedded bbolt
// database: job records and node records as opaque JSON owned by the
// server, and the job id sequence. Every write is committed (fsync'd)
// before it returns, so what the server acknowledges survives a crash.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketJobs  = []byte("jobs")
	bucketNodes = []byte("nodes")
	bucketMeta  = []byte("meta")
	bucketBlobs = []byte("blobs")
	keyNextID   = []byte("next_job_id")
)

// ErrLocked means another process holds the database open.
var ErrLocked = errors.New("store is in use by another process")

// Store is the embedded database of one server.
type Store struct {
	db    *bolt.DB
	group *groupCommit // concurrent writes share commits (group.go)
}

// Open opens (creating if needed) the database file path. It fails fast
// with ErrLocked when another hpcd holds it instead of blocking forever.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range append([][]byte{bucketJobs, bucketNodes, bucketMeta, bucketBlobs}, archiveBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return &Store{db: db, group: &groupCommit{db: db}}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// CreateJobs takes n fresh, consecutive job ids and stores the record that
// build returns for each, all in one transaction: either every job of a
// submit (an array) exists durably afterwards or none does.
func (s *Store) CreateJobs(n int, build func(id uint64, i int) ([]byte, error)) ([]uint64, error) {
	var ids []uint64
	err := s.group.update(func(tx *bolt.Tx) error {
		ids = ids[:0]
		meta := tx.Bucket(bucketMeta)
		next := uint64(1)
		if v := meta.Get(keyNextID); v != nil {
			next = binary.BigEndian.Uint64(v)
		}
		jobs := tx.Bucket(bucketJobs)
		jobs.FillPercent = appendFill
		for i := 0; i < n; i++ {
			id := next + uint64(i)
			data, err := build(id, i)
			if err != nil {
				return err
			}
			if err := jobs.Put(idKey(id), data); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return meta.Put(keyNextID, idKey(next+uint64(n)))
	})
	if err != nil {
		return nil, fmt.Errorf("store jobs: %w", err)
	}
	return ids, nil
}

// WriteJobs durably stores the records that encode returns for ids,
// encoding inside the write transaction: when two writers race on one
// job, the later commit encodes later and so always carries the newer
// state. encode returns ok=false to skip an id.
func (s *Store) WriteJobs(ids []uint64, encode func(id uint64) (data []byte, ok bool, err error)) error {
	err := s.group.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJobs)
		for _, id := range ids {
			data, ok, err := encode(id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := b.Put(idKey(id), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store job updates: %w", err)
	}
	return nil
}

// Jobs calls fn for every stored job in id order.
func (s *Store) Jobs(fn func(id uint64, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			return fn(binary.BigEndian.Uint64(k), v)
		})
	})
}

// PutNode durably stores a node record under its name.
func (s *Store) PutNode(name string, data []byte) error {
	err := s.group.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).Put([]byte(name), data)
	})
	if err != nil {
		return fmt.Errorf("store node %s: %w", name, err)
	}
	return nil
}

// Nodes calls fn for every stored node in name order.
func (s *Store) Nodes(fn func(name string, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}

// PutBlob durably stores data that many records share (a job environment)
// under a key derived from its content; putting the same key again is
// harmless.
func (s *Store) PutBlob(key string, data []byte) error {
	err := s.group.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).Put([]byte(key), data)
	})
	if err != nil {
		return fmt.Errorf("store blob %s: %w", key, err)
	}
	return nil
}

// Blobs calls fn for every stored blob in key order.
func (s *Store) Blobs(fn func(key string, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}

// appendFill is how full CreateJobs leaves the jobs bucket's pages when
// it splits them. New ids always go at the end, so bbolt's default (0.5)
// left every page of pending jobs half empty: twice the file, and twice
// the memory map the server touches (its RSS) for the same jobs.
const appendFill = 0.95
