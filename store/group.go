package store

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes one group commit carries, so that one
// transaction (and the callers waiting on it) stays short under a flood.
const maxGroup = 1000

// groupCommit shares durable commits between concurrent writers without
// making a lone writer wait: a write that finds no commit in progress
// commits at once; writes that arrive while a commit is in progress (its
// fsync) are gathered and go together in the next one. bbolt's own
// DB.Batch instead holds every batch open for MaxBatchDelay, which a
// serial client (one `hpcsub submit` after another) pays in full on
// every request. Each caller still returns only after the commit that
// carries its write, so nothing is acknowledged before it is durable.
type groupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	pending []groupCall
	running bool // a goroutine is committing; pending joins its next round
}

type groupCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// errRunAlone tells a caller whose function failed inside a shared
// transaction to run it again in a transaction of its own, so that its
// error (or success) is its own and not caused by another's write.
var errRunAlone = errors.New("store: write failed in a group commit; run alone")

// update runs fn in a write transaction shared with the writes that
// arrive meanwhile, and returns once that transaction is committed. fn
// may run more than once (when another function of the group fails), as
// with bbolt's Batch: it must not have effects outside tx that a second
// run would repeat.
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	c := groupCall{fn: fn, err: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		// The caller commits its own group; later groups are committed by a
		// goroutine so that this caller's answer is not delayed by others'.
		g.commitNext()
	}
	err := <-c.err
	if errors.Is(err, errRunAlone) {
		err = g.db.Update(fn)
	}
	return err
}

// commitNext commits the pending writes as one transaction, then hands
// what arrived meanwhile to a new goroutine, or ends the run.
func (g *groupCommit) commitNext() {
	g.mu.Lock()
	calls := g.pending
	if len(calls) > maxGroup {
		calls = calls[:maxGroup:maxGroup]
		g.pending = append([]groupCall(nil), g.pending[maxGroup:]...)
	} else {
		g.pending = nil
	}
	g.mu.Unlock()
	g.commit(calls)
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.running = false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go g.commitNext()
}

// commit runs calls in one transaction. A function that fails is taken
// out and told to run alone; the others are tried again without it.
func (g *groupCommit) commit(calls []groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].err <- errRunAlone
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.err <- err // nil, or the commit's own failure (a full disk)
		}
		return
	}
}

// callSafely turns a panic in fn into an error, so that one bad write
// cannot take down the writers grouped with it.
func callSafely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
