package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SwapBlob stores data under key and deletes the blobs named in drop, in
// one commit: a record that replaces others (a user's new token) is never
// stored beside them nor lost with them.
func (s *Store) SwapBlob(key string, data []byte, drop []string) error {
	err := s.group.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		for _, k := range drop {
			if err := b.Delete([]byte(k)); err != nil {
				return fmt.Errorf("delete blob %s: %w", k, err)
			}
		}
		return b.Put([]byte(key), data)
	})
	if err != nil {
		return fmt.Errorf("store blob %s: %w", key, err)
	}
	return nil
}
