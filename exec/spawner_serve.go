package exec

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// The spawner's request protocol: the messages hpcd and the spawner
// exchange over the socket (one JSON object a line), the loop that serves
// one connection, and the requests that list, cancel and release jobs.

// spawnMsg is a request from hpcd or a reply/event from the spawner.
type spawnMsg struct {
	Op     string          `json:"op,omitempty"` // launch, list, cancel, release, lease, bye; end (event)
	Seq    uint64          `json:"seq,omitempty"`
	ID     uint64          `json:"id,omitempty"`
	Rec    *record         `json:"rec,omitempty"`
	Reason string          `json:"reason,omitempty"`
	At     time.Time       `json:"at,omitempty"`
	PID    int             `json:"pid,omitempty"`
	Err    string          `json:"err,omitempty"`
	O      *Outcome        `json:"o,omitempty"`
	Jobs   []spawnJobState `json:"jobs,omitempty"`
}

// spawnJobState is a job as the spawner lists it.
type spawnJobState struct {
	ID  uint64   `json:"id"`
	PID int      `json:"pid"`
	O   *Outcome `json:"o,omitempty"`
	// GPUs and GPUShare are the spec's, for an agent that adopts the job
	// and goes on measuring its GPU usage (Handle.GPUs).
	GPUs     []int   `json:"gpus,omitempty"`
	GPUShare float64 `json:"gpu_share,omitempty"`
}

type spawnClientConn struct {
	c  net.Conn
	mu sync.Mutex
	w  *bufio.Writer
}

func (c *spawnClientConn) send(m spawnMsg) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w.Write(append(b, '\n'))
	c.w.Flush()
}

func (sp *spawner) serve(c *net.UnixConn) {
	if err := peerAllowed(c); err != nil {
		sp.log.Warn("refused a connection", "err", err)
		c.Close()
		return
	}
	cl := &spawnClientConn{c: c, w: bufio.NewWriter(c)}
	sp.mu.Lock()
	sp.clients[cl] = true
	sp.mu.Unlock()
	defer func() {
		sp.mu.Lock()
		delete(sp.clients, cl)
		sp.mu.Unlock()
		c.Close()
		sp.pokeIdle()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m spawnMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			sp.log.Warn("bad request", "err", err)
			return
		}
		switch m.Op {
		case "launch":
			r := spawnMsg{Seq: m.Seq}
			if m.Rec == nil {
				r.Err = "launch without a record"
			} else if pid, err := sp.launch(m.Rec); err != nil {
				r.Err = err.Error()
			} else {
				r.PID = pid
			}
			cl.send(r)
		case "list":
			cl.send(spawnMsg{Seq: m.Seq, Jobs: sp.list()})
		case "lease": // no reply: renewals are frequent and need none
			sp.mu.Lock()
			if j := sp.jobs[m.ID]; j != nil && m.At.After(j.lease) {
				j.lease = m.At
			}
			sp.mu.Unlock()
		case "cancel":
			go func() {
				r := spawnMsg{Seq: m.Seq}
				if err := sp.cancelJob(m.ID, m.Reason); err != nil {
					r.Err = err.Error()
				}
				cl.send(r)
			}()
		case "release":
			go func() {
				r := spawnMsg{Seq: m.Seq}
				if err := sp.release(m.ID); err != nil {
					r.Err = err.Error()
				}
				cl.send(r)
			}()
		case "bye":
			// The agent stops: free slots go now (the parent cgroup may
			// then be removed), the spawner itself once idle.
			sp.mu.Lock()
			sp.pool.removeFree()
			sp.mu.Unlock()
			if sp.stopProfile != nil {
				sp.stopProfile()
			}
			cl.send(spawnMsg{Seq: m.Seq})
		default:
			cl.send(spawnMsg{Seq: m.Seq, Err: "unknown op " + m.Op})
		}
	}
}

func (sp *spawner) list() []spawnJobState {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]spawnJobState, 0, len(sp.jobs))
	for _, j := range sp.jobs {
		out = append(out, spawnJobState{ID: j.id, PID: j.pid, O: j.outcome, GPUs: gpuIndexes(j.spec), GPUShare: j.spec.GPUShare})
	}
	return out
}

// cancelJob records the cancel, then kills the job's whole cgroup.
func (sp *spawner) cancelJob(id uint64, reason string) error {
	sp.mu.Lock()
	j := sp.jobs[id]
	if j == nil {
		sp.mu.Unlock()
		return fmt.Errorf("cancel job %d: %w", id, ErrUnknownJob)
	}
	if j.reaped {
		sp.mu.Unlock()
		return nil // over: its outcome stands
	}
	j.cancel = &cancelRequest{Reason: reason, Time: time.Now()}
	err := sp.appendLocked(journalEntry{Op: "C", ID: id, Reason: reason})
	sp.mu.Unlock()
	if err != nil {
		sp.log.Warn("cannot journal a cancel", "job", id, "err", err)
	}
	return j.slot.killAll()
}

// release forgets a job: a running one is cancelled and waited for, what
// is left in its cgroup is killed, and the slot goes back to the pool.
func (sp *spawner) release(id uint64) error {
	sp.mu.Lock()
	j := sp.jobs[id]
	sp.mu.Unlock()
	if j == nil {
		return nil
	}
	select {
	case <-j.ended:
	default:
		_ = sp.cancelJob(id, "released by the agent while running")
		select {
		case <-j.ended:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("release job %d: still running after a cancel", id)
		}
	}
	if j.slot != nil && !j.slot.empty() {
		if err := j.slot.killAll(); err != nil {
			return fmt.Errorf("release job %d: %w", id, err)
		}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.jobs, id)
	if err := sp.appendLocked(journalEntry{Op: "R", ID: id}); err != nil {
		sp.log.Warn("cannot journal a release", "job", id, "err", err)
	}
	if j.script != "" {
		_ = os.Remove(j.script)
	}
	if j.slot != nil {
		sp.pool.put(j.slot)
	}
	if sp.jlines > 4096 && sp.jlines > 4*len(sp.jobs) {
		if err := sp.compact(); err != nil {
			sp.log.Warn("cannot compact the journal", "err", err)
		}
	}
	return nil
}
