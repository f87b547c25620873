package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The spawner's journal: the JSON lines that record every launch, cancel,
// outcome and release (made durable before an outcome is reported), its
// replay on a restart (recover), its compaction, and the writer that
// batches outcomes into one fdatasync.

// journalEntry is one line of the journal.
type journalEntry struct {
	Op     string    `json:"op"` // L, C, E, R
	ID     uint64    `json:"id"`
	Slot   int       `json:"slot,omitempty"`
	Start  time.Time `json:"start,omitempty"`
	Reason string    `json:"reason,omitempty"`
	O      *Outcome  `json:"o,omitempty"`
}

// recover replays the journal: jobs launched by a spawner that died
// without their outcome were killed with it (their cgroup is emptied now)
// and end as host failures; outcomes not yet released are kept. The
// journal is then rewritten with only the jobs still held.
func (sp *spawner) recover() error {
	path := filepath.Join(sp.dir, spawnerJournal)
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Slots are claimed once the whole journal is read: a released job's
	// slot is free again (claimed on its L line, it would never be reused
	// nor removed).
	slots := map[uint64]int{}
	if f != nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e journalEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue // a torn last line
			}
			switch e.Op {
			case "L":
				sp.jobs[e.ID] = &sjob{id: e.ID, start: e.Start, ended: make(chan struct{}), reaped: true}
				slots[e.ID] = e.Slot
			case "C":
				if j := sp.jobs[e.ID]; j != nil {
					j.cancel = &cancelRequest{Reason: e.Reason}
				}
			case "E":
				if j := sp.jobs[e.ID]; j != nil && e.O != nil {
					j.outcome = e.O
					close(j.ended)
				}
			case "R":
				delete(sp.jobs, e.ID)
			}
		}
		f.Close()
	}
	for _, j := range sp.jobs {
		j.slot = sp.pool.claim(slots[j.id])
		j.script = filepath.Join(sp.dir, spawnerScripts, strconv.FormatUint(j.id, 10)+".sh")
		if j.outcome != nil {
			continue
		}
		if j.slot != nil {
			if err := j.slot.killAll(); err != nil {
				sp.log.Warn("kill remains of job", "job", j.id, "err", err)
			}
		}
		o := Outcome{State: StateFailed, ExitCode: exitSetupFailed, Start: j.start, End: time.Now(), HostFailure: true,
			Reason: "the job's supervisor (spawner) died; the job was killed"}
		if j.cancel != nil {
			o.HostFailure = false
			o.State, o.Reason = StateCancelled, "cancelled"
			if j.cancel.Reason != "" {
				o.Reason += ": " + j.cancel.Reason
			}
		}
		j.outcome = &o
		close(j.ended)
	}
	sp.pool.adoptLeftovers()
	return sp.compact()
}

// compact rewrites the journal with the jobs still held, durably.
func (sp *spawner) compact() error {
	path := filepath.Join(sp.dir, spawnerJournal)
	var b []byte
	n := 0
	for _, j := range sp.jobs {
		e := journalEntry{Op: "L", ID: j.id, Start: j.start}
		if j.slot != nil {
			e.Slot = j.slot.n
		}
		line, _ := json.Marshal(e)
		b = append(append(b, line...), '\n')
		n++
		if j.cancel != nil {
			line, _ = json.Marshal(journalEntry{Op: "C", ID: j.id, Reason: j.cancel.Reason})
			b = append(append(b, line...), '\n')
			n++
		}
		if j.outcome != nil {
			line, _ = json.Marshal(journalEntry{Op: "E", ID: j.id, O: j.outcome})
			b = append(append(b, line...), '\n')
			n++
		}
	}
	if err := writeFileAtomic(path, b, 0o600, true); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if sp.journal != nil {
		sp.journal.Close()
	}
	sp.journal, sp.jsize, sp.jlines = f, int64(len(b)), n
	return nil
}

// appendLocked writes entries to the journal in one write; a failed write
// is cut back off so that no torn line stays between good ones.
func (sp *spawner) appendLocked(es ...journalEntry) error {
	var b []byte
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	if _, err := sp.journal.Write(b); err != nil {
		_ = sp.journal.Truncate(sp.jsize)
		return fmt.Errorf("write journal: %w", err)
	}
	sp.jsize += int64(len(b))
	sp.jlines += len(es)
	return nil
}

// writer makes outcomes durable, many per fdatasync, then reports them.
// While the journal cannot be written (a full disk) it keeps them and
// retries: a job's own result never turns into a host failure.
func (sp *spawner) writer() {
	for j := range sp.outq {
		batch := []*sjob{j}
		for more := true; more && len(batch) < 512; {
			select {
			case k := <-sp.outq:
				batch = append(batch, k)
			default:
				more = false
			}
		}
		es := make([]journalEntry, len(batch))
		for i, k := range batch {
			es[i] = journalEntry{Op: "E", ID: k.id, O: k.pendingO}
		}
		var f *os.File
		delay := 50 * time.Millisecond
		for attempt := 1; ; attempt++ {
			sp.mu.Lock()
			err := sp.appendLocked(es...)
			f = sp.journal
			sp.mu.Unlock()
			if err == nil {
				break
			}
			if attempt == 1 || attempt%50 == 0 {
				sp.log.Error("cannot write outcomes; keeping them and retrying", "err", err, "attempt", attempt)
			}
			time.Sleep(delay)
			delay = min(delay*2, 2*time.Second)
		}
		// Written, reported, then made durable: a connected agent passes
		// the outcome on to the server, which commits it before anyone
		// sees it, so the fdatasync need not delay it; it only keeps the
		// outcome for an agent that is not there (the spawner reports
		// nothing new before it is done, and does not exit before it).
		sp.mu.Lock()
		var events []spawnMsg
		for _, k := range batch {
			k.outcome = k.pendingO
			close(k.ended)
			events = append(events, spawnMsg{Op: "end", ID: k.id, O: k.outcome})
		}
		clients := make([]*spawnClientConn, 0, len(sp.clients))
		for c := range sp.clients {
			clients = append(clients, c)
		}
		sp.mu.Unlock()
		for _, c := range clients {
			for _, ev := range events {
				c.send(ev)
			}
		}
		for attempt := 1; ; attempt++ {
			err := unix.Fdatasync(int(f.Fd()))
			if err == nil || errors.Is(err, unix.EBADF) { // EBADF: compacted meanwhile, durably
				break
			}
			if attempt == 1 || attempt%50 == 0 {
				sp.log.Error("cannot sync outcomes; retrying", "err", err, "attempt", attempt)
			}
			time.Sleep(min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second))
		}
		sp.mu.Lock()
		sp.inflight -= len(batch)
		sp.mu.Unlock()
		sp.pokeIdle()
	}
}
