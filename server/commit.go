package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Write-ahead state changes. A job or node record in memory is never
// edited in place: a change is made on a copy, the copy is committed to
// the store, and only a committed copy replaces the record in memory. A
// failed commit therefore changes nothing anyone can see, and what is
// shown is always what a restart would load. Only derived fields that are
// never stored (waitReason, reservedStart, node.agent) are set in place.
//
// Writes of one job are serialised by a write slot (s.writing): a second
// change of the same job waits until the first is committed and installed,
// so it always starts from the newest record. Changes of different jobs
// commit side by side and share bbolt batches.

// skipJob, returned by a change, leaves that job as it is without failing
// the rest of the update.
var skipJob = errors.New("job left unchanged")

// clone copies a job record so that editing the copy can't show through
// the original: History and Runs are clipped so an append reallocates, and Parts
// (the only map a change edits) is copied. The jobSpec is shared, not
// copied: a change that edits it calls ownSpec first (jobspec.go).
func (j *job) clone() *job {
	c := *j
	c.History = slices.Clip(j.History)
	c.Runs = slices.Clip(j.Runs)
	if j.Parts != nil {
		c.Parts = maps.Clone(j.Parts)
	}
	return &c
}

// acquireLocked takes the write slots of ids, waiting while any of them is
// held by another change; s.mu held (released while waiting).
func (s *Server) acquireLocked(ids []uint64) {
	for {
		var busy chan struct{}
		for _, id := range ids {
			if c, ok := s.writing[id]; ok {
				busy = c
				break
			}
		}
		if busy == nil {
			break
		}
		s.mu.Unlock()
		<-busy
		s.mu.Lock()
	}
	for _, id := range ids {
		s.writing[id] = make(chan struct{})
	}
}

// releaseSlotsLocked hands the write slots of ids back; s.mu held.
func (s *Server) releaseSlotsLocked(ids []uint64) {
	for _, id := range ids {
		if c, ok := s.writing[id]; ok {
			close(c)
			delete(s.writing, id)
		}
	}
}

// updateJobs changes the jobs ids write-ahead. For each existing job it
// calls change on a copy of the record (with s.mu held, so change sees the
// newest state and must not block); change returns skipJob to leave that
// job alone or another error to abandon the whole update. The copies are
// committed in one transaction and only then installed. It returns the
// installed records; on any error nothing was changed and the error wraps
// ErrStore when the store refused the commit.
func (s *Server) updateJobs(ids []uint64, change func(j *job) error) ([]*job, error) {
	ids = slices.Clone(ids)
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	s.acquireLocked(ids)
	var changed []*job
	for _, id := range ids {
		cur, ok := s.jobs[id]
		if !ok {
			continue
		}
		c := cur.clone()
		if err := change(c); err != nil {
			if errors.Is(err, skipJob) {
				continue
			}
			s.releaseSlotsLocked(ids)
			s.mu.Unlock()
			return nil, err
		}
		changed = append(changed, c)
	}
	s.mu.Unlock()
	err := s.commitJobs(changed)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.releaseSlotsLocked(ids)
	if err != nil {
		return nil, err
	}
	for _, c := range changed {
		cur, ok := s.jobs[c.ID]
		if ok {
			// Derived, unstored fields may have been set on the record
			// while the copy was committed; a pending job keeps them.
			c.waitReason, c.reservedStart = cur.waitReason, cur.reservedStart
		}
		s.countLocked(cur, c)
		s.jobs[c.ID] = c
	}
	if len(changed) > 0 {
		s.notifyLocked()
	}
	return changed, nil
}

// updateJob is updateJobs for one job, asked by c (nil: the system); a
// job that does not exist is ErrNotFound, and a skipped change returns
// the record unchanged.
func (s *Server) updateJob(c *Caller, id uint64, change func(j *job) error) (*job, error) {
	s.mu.Lock()
	_, ok := s.jobs[id]
	s.mu.Unlock()
	if !ok {
		return nil, s.notLive(c, id)
	}
	changed, err := s.updateJobs([]uint64{id}, change)
	if err != nil {
		return nil, err
	}
	if len(changed) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.jobs[id], nil
	}
	return changed[0], nil
}

// commitJobs durably writes job records that nobody else can reach yet
// (copies being changed).
func (s *Server) commitJobs(js []*job) error {
	if len(js) == 0 {
		return nil
	}
	data := make(map[uint64][]byte, len(js))
	ids := make([]uint64, 0, len(js))
	for _, j := range js {
		b, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode job %d: %w", j.ID, err)
		}
		data[j.ID] = b
		ids = append(ids, j.ID)
	}
	err := s.store.WriteJobs(ids, func(id uint64) ([]byte, bool, error) {
		return data[id], true, nil
	})
	if err != nil {
		return storeFailed(err)
	}
	return nil
}

// updateNode changes node name write-ahead, as updateJobs does for jobs.
// Node changes are rare (registration, drain), so one lock serialises them.
func (s *Server) updateNode(name string, change func(n *node) error) (*node, error) {
	s.nodeWrites.Lock()
	defer s.nodeWrites.Unlock()
	s.mu.Lock()
	cur, ok := s.nodes[name]
	var c node
	if ok {
		c = *cur
	}
	err := change(&c)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode node %s: %w", name, err)
	}
	if err := s.store.PutNode(name, data); err != nil {
		return nil, storeFailed(err)
	}
	s.mu.Lock()
	if cur, ok := s.nodes[name]; ok {
		// Derived, never stored: whether an agent is attached now, its
		// protocol session and heartbeat.
		c.agent, c.session, c.lastSync, c.downHandled = cur.agent, cur.session, cur.lastSync, cur.downHandled
	}
	s.nodes[name] = &c
	s.mu.Unlock()
	return &c, nil
}

// updateKnownNode is updateNode for a node that must already be known (an
// admin's drain or resume): an unknown name is ErrNotFound, decided under
// the same lock as the change, so it never creates a record.
func (s *Server) updateKnownNode(name string, change func(n *node) error) error {
	_, err := s.updateNode(name, func(n *node) error {
		if _, ok := s.nodes[name]; !ok { // s.mu is held while change runs
			return notFound("no node named %q: see `hpcsub nodes`", name)
		}
		return change(n)
	})
	return err
}
