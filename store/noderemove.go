package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// RemoveNode forgets a node and stores the blobs that go with its removal
// (its revoked certificate) in one transaction: a node is never forgotten
// with its certificate still valid.
func (s *Store) RemoveNode(name string, blobs map[string][]byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for k, v := range blobs {
			if err := tx.Bucket(bucketBlobs).Put([]byte(k), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketNodes).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("remove node %s: %w", name, err)
	}
	return nil
}
