package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The accounting archive holds ended jobs, apart from the live jobs the
// server loads and schedules. Records are written once and only deleted
// by retention. Three indexes lead to them:
//
//	archive          id                      -> record (opaque, the server's)
//	archive_end      end | id                -> user 0 account 0 summary
//	archive_user     user 0 end | id         -> nothing
//	archive_account  account 0 end | id      -> nothing
//
// end is the end time in Unix nanoseconds, big endian, so a range of end
// times is a range of keys. A query reads the summaries only, and the
// records of the jobs it returns.
var (
	bucketArchive        = []byte("archive")
	bucketArchiveEnd     = []byte("archive_end")
	bucketArchiveUser    = []byte("archive_user")
	bucketArchiveAccount = []byte("archive_account")
	bucketUsage          = []byte("usage")
)

var archiveBuckets = [][]byte{bucketArchive, bucketArchiveEnd, bucketArchiveUser, bucketArchiveAccount, bucketUsage}

// ArchiveRecord is one ended job as it goes into the archive.
type ArchiveRecord struct {
	ID      uint64
	End     time.Time
	User    string
	Account string
	// Summary is stored in the end-time index: what queries filter and
	// sum on without reading the record.
	Summary []byte
	Data    []byte
}

// ArchiveKey is a position in end-time order: the cursor of a paged query.
type ArchiveKey struct {
	End time.Time
	ID  uint64
}

func (k ArchiveKey) bytes() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(k.End.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], k.ID)
	return b
}

func archiveKeyOf(b []byte) ArchiveKey {
	return ArchiveKey{End: time.Unix(0, int64(binary.BigEndian.Uint64(b))), ID: binary.BigEndian.Uint64(b[8:16])}
}

func nameKey(name string, k []byte) []byte {
	out := make([]byte, 0, len(name)+1+len(k))
	out = append(append(append(out, name...), 0), k...)
	return out
}

// Archive moves ended jobs from the live set into the archive in one
// commit, together with the usage entries given (the server's decayed
// usage per account, which must change with the jobs that add to it).
func (s *Store) Archive(recs []ArchiveRecord, usage map[string][]byte) error {
	err := s.group.update(func(tx *bolt.Tx) error {
		jobs, arch := tx.Bucket(bucketJobs), tx.Bucket(bucketArchive)
		byEnd, byUser, byAccount := tx.Bucket(bucketArchiveEnd), tx.Bucket(bucketArchiveUser), tx.Bucket(bucketArchiveAccount)
		for _, r := range recs {
			id := idKey(r.ID)
			if err := jobs.Delete(id); err != nil {
				return err
			}
			if old := arch.Get(id); old != nil {
				continue // archived already (a retried batch): records are written once
			}
			k := ArchiveKey{End: r.End, ID: r.ID}.bytes()
			if err := arch.Put(id, r.Data); err != nil {
				return err
			}
			if err := byEnd.Put(k, endValue(r)); err != nil {
				return err
			}
			if err := byUser.Put(nameKey(r.User, k), nil); err != nil {
				return err
			}
			if err := byAccount.Put(nameKey(r.Account, k), nil); err != nil {
				return err
			}
		}
		u := tx.Bucket(bucketUsage)
		for k, v := range usage {
			if err := u.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %d job(s): %w", len(recs), err)
	}
	return nil
}

// endValue is the end-index entry of r: the names its other index keys
// hold (so retention finds them without a scan) and its summary.
func endValue(r ArchiveRecord) []byte {
	v := make([]byte, 0, len(r.User)+len(r.Account)+2+len(r.Summary))
	v = append(append(v, r.User...), 0)
	v = append(append(v, r.Account...), 0)
	return append(v, r.Summary...)
}

// splitEndValue undoes endValue.
func splitEndValue(v []byte) (user, account, summary []byte) {
	user, rest, _ := bytes.Cut(v, []byte{0})
	account, summary, _ = bytes.Cut(rest, []byte{0})
	return user, account, summary
}

// ArchivedJob returns the archived record of job id, or ok=false.
func (s *Store) ArchivedJob(id uint64) (data []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketArchive).Get(idKey(id)); v != nil {
			data, ok = bytes.Clone(v), true
		}
		return nil
	})
	return data, ok, err
}

// ArchiveScan selects archived jobs by end time: Since <= end < Until
// (zero Until: no upper bound), after the cursor After when set, through
// the user or else the account index when one is named.
type ArchiveScan struct {
	Since, Until time.Time
	User         string
	Account      string
	After        *ArchiveKey
}

// ArchiveEntry is one job a scan visits. Record reads the job's full
// record; its bytes are valid only during the callback.
type ArchiveEntry struct {
	Key     ArchiveKey
	User    string
	Account string
	Summary []byte
	Record  func() []byte
}

// ScanArchive calls fn for the selected jobs in end-time order until fn
// returns false. Jobs of the other named filter (the account when the
// user index was used) still reach fn: it checks them on the summary.
func (s *Store) ScanArchive(q ArchiveScan, fn func(e ArchiveEntry) (more bool, err error)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		arch, byEnd := tx.Bucket(bucketArchive), tx.Bucket(bucketArchiveEnd)
		var idx *bolt.Bucket
		var prefix []byte
		switch {
		case q.User != "":
			idx, prefix = tx.Bucket(bucketArchiveUser), append([]byte(q.User), 0)
		case q.Account != "":
			idx, prefix = tx.Bucket(bucketArchiveAccount), append([]byte(q.Account), 0)
		default:
			idx = byEnd
		}
		from := ArchiveKey{End: q.Since}.bytes()
		if q.Since.IsZero() {
			from = make([]byte, 16)
		}
		if q.After != nil {
			if after := q.After.bytes(); bytes.Compare(after, from) >= 0 {
				from = append(after, 0) // the first key after the cursor
			}
		}
		var until []byte
		if !q.Until.IsZero() {
			until = ArchiveKey{End: q.Until}.bytes()
		}
		c := idx.Cursor()
		for k, v := c.Seek(append(bytes.Clone(prefix), from...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			ek := k[len(prefix):]
			if len(ek) != 16 {
				return fmt.Errorf("archive index key %x is malformed", k)
			}
			if until != nil && bytes.Compare(ek, until) >= 0 {
				break
			}
			if idx != byEnd {
				v = byEnd.Get(ek)
			}
			key := archiveKeyOf(ek)
			user, account, summary := splitEndValue(v)
			more, err := fn(ArchiveEntry{Key: key, User: string(user), Account: string(account), Summary: summary, Record: func() []byte { return arch.Get(idKey(key.ID)) }})
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// PurgeArchive deletes at most max archived jobs that ended before
// cutoff, oldest first (retention), and says how many it deleted.
func (s *Store) PurgeArchive(cutoff time.Time, max int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		arch, byEnd := tx.Bucket(bucketArchive), tx.Bucket(bucketArchiveEnd)
		byUser, byAccount := tx.Bucket(bucketArchiveUser), tx.Bucket(bucketArchiveAccount)
		limit := ArchiveKey{End: cutoff}.bytes()
		type purge struct{ key, user, account []byte }
		var dead []purge
		c := byEnd.Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k, limit) < 0 && len(dead) < max; k, v = c.Next() {
			u, a, _ := splitEndValue(v)
			dead = append(dead, purge{bytes.Clone(k), bytes.Clone(u), bytes.Clone(a)})
		}
		for _, d := range dead {
			for _, del := range []struct {
				b *bolt.Bucket
				k []byte
			}{
				{arch, d.key[8:16]}, {byEnd, d.key},
				{byUser, nameKey(string(d.user), d.key)}, {byAccount, nameKey(string(d.account), d.key)},
			} {
				if err := del.b.Delete(del.k); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge archive before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, nil
}

// Usage calls fn for every stored usage entry (see Archive).
func (s *Store) Usage(fn func(key string, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}
