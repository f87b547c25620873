package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// errSessionClosed: the agent's session ended (node DOWN, replaced by a
// new registration, removed) before the command could be queued.
var errSessionClosed = errors.New("the node's agent session has ended")

// agentSession is the server's side of one registered agent: the queue of
// commands it has not acknowledged yet and the sequence of its syncs. It
// implements Agent, so the scheduler drives a remote node exactly as it
// drove the in-process one: every call becomes a queued command.
type agentSession struct {
	id     string
	node   string
	serial string // the agent's certificate serial; "" in process

	mu     sync.Mutex
	seq    uint64        // last sync's sequence number
	next   uint64        // last command id given out
	queue  []api.Command // not yet acknowledged, in id order
	wake   chan struct{} // closed and replaced when the queue grows or the session ends
	closed bool
}

func newAgentSession(node, serial string) *agentSession {
	var b [16]byte
	rand.Read(b[:])
	return &agentSession{id: hex.EncodeToString(b[:]), node: node, serial: serial, wake: make(chan struct{})}
}

func (a *agentSession) push(c api.Command) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errSessionClosed
	}
	a.next++
	c.ID = a.next
	a.queue = append(a.queue, c)
	close(a.wake)
	a.wake = make(chan struct{})
	return nil
}

// Launch queues the job's part for the agent; its start (or failure to
// start) comes back as an outcome.
func (a *agentSession) Launch(_ context.Context, asg api.Assignment) error {
	return a.push(api.Command{Kind: api.CommandLaunch, JobID: asg.JobID, Launch: &asg})
}

// Cancel queues a kill of the job's processes.
func (a *agentSession) Cancel(jobID uint64, reason string) error {
	return a.push(api.Command{Kind: api.CommandCancel, JobID: jobID, Reason: reason})
}

// Release queues the agent's forgetting of a job whose outcome is stored.
func (a *agentSession) Release(jobID uint64) error {
	return a.push(api.Command{Kind: api.CommandRelease, JobID: jobID})
}

// Signal queues a signal to the job's processes (e.g. a checkpoint warning).
func (a *agentSession) Signal(jobID uint64, sig string) error {
	return a.push(api.Command{Kind: api.CommandSignal, JobID: jobID, Signal: sig})
}

// advance accepts sync number seq once: a repeated or older one is a
// replay and changes nothing.
func (a *agentSession) advance(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq <= a.seq {
		return false
	}
	a.seq = seq
	return true
}

// ack drops the commands the agent has taken on.
func (a *agentSession) ack(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := 0
	for i < len(a.queue) && a.queue[i].ID <= id {
		i++
	}
	a.queue = append(a.queue[:0:0], a.queue[i:]...)
}

// await returns the unacknowledged commands, waiting up to d for some
// when there are none; it returns early when ctx ends or the session closes.
func (a *agentSession) await(ctx context.Context, d time.Duration) ([]api.Command, error) {
	var timer <-chan time.Time
	for {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return nil, errSessionClosed
		}
		if len(a.queue) > 0 || d <= 0 {
			out := append([]api.Command(nil), a.queue...)
			a.mu.Unlock()
			return out, nil
		}
		wake := a.wake
		a.mu.Unlock()
		if timer == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-wake:
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// hasLaunch reports whether a launch of the job's given attempt is queued.
func (a *agentSession) hasLaunch(jobID, attempt uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.queue {
		if c.Kind == api.CommandLaunch && c.JobID == jobID && c.Launch != nil && c.Launch.Attempt == attempt {
			return true
		}
	}
	return false
}

// dropLaunches removes the job's queued launches, so none is delivered
// after the server decided the run never started; it returns how many.
func (a *agentSession) dropLaunches(jobID uint64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.queue[:0:0]
	for _, c := range a.queue {
		if c.Kind != api.CommandLaunch || c.JobID != jobID {
			kept = append(kept, c)
		}
	}
	n := len(a.queue) - len(kept)
	a.queue = kept
	return n
}

// unacked returns the commands still queued, for a session that replaces
// this one.
func (a *agentSession) unacked() []api.Command {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]api.Command(nil), a.queue...)
}

func (a *agentSession) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.wake)
	}
}
