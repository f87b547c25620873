package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// History pages: the default and the most one request may ask for.
const (
	historyPage    = 1000
	historyPageMax = 10000
)

// endedQuery selects ended jobs, archived or not yet archived.
type endedQuery struct {
	scan   store.ArchiveScan
	states map[api.JobState]bool // empty: any
}

// endedJob is one ended job an endedQuery visits.
type endedJob struct {
	key           store.ArchiveKey
	user, account string
	summary       []byte        // archiveSummary.encode(); valid during the visit only
	record        func() []byte // the api.Job JSON
}

func (q *endedQuery) match(user, account string, state api.JobState) bool {
	return (q.scan.User == "" || user == q.scan.User) &&
		(q.scan.Account == "" || account == q.scan.Account) &&
		(len(q.states) == 0 || q.states[state])
}

func (q *endedQuery) inRange(k store.ArchiveKey) bool {
	switch {
	case k.End.Before(q.scan.Since):
		return false
	case !q.scan.Until.IsZero() && !k.End.Before(q.scan.Until):
		return false
	case q.scan.After != nil && !afterKey(k, *q.scan.After):
		return false
	}
	return true
}

func afterKey(k, than store.ArchiveKey) bool {
	if !k.End.Equal(than.End) {
		return k.End.After(than.End)
	}
	return k.ID > than.ID
}

// eachEnded calls fn for the ended jobs q selects in end-time order until
// fn returns false: the archive's, merged with ended jobs still in the
// live set (their outcome just settled; the next pass archives them).
func (s *Server) eachEnded(q *endedQuery, fn func(e endedJob) bool) error {
	s.mu.Lock()
	var live []endedJob
	for _, j := range s.jobs {
		if !api.Terminal(j.State) || j.End == nil {
			continue
		}
		k := store.ArchiveKey{End: *j.End, ID: j.ID}
		if !q.inRange(k) || !q.match(j.User, j.Account, j.State) {
			continue
		}
		data, err := json.Marshal(j.apiJob())
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("encode job %d: %w", j.ID, err)
		}
		live = append(live, endedJob{key: k, user: j.User, account: j.Account, summary: summarize(j).encode(),
			record: func() []byte { return data }})
	}
	s.mu.Unlock()
	sort.Slice(live, func(a, b int) bool { return afterKey(live[b].key, live[a].key) })

	// A job can be in both: a pass may commit it to the archive between
	// the snapshot above and the scan below, or the snapshot may fall
	// between a pass's commit and its removing the jobs from memory. It
	// is listed once, matched by id (never by comparing times with ==:
	// a time read back from the archive differs in location and clock
	// reading from the live one for the same instant).
	const (
		livePending = iota
		liveListed
		liveArchived // the archive's copy was listed: the live one is not
	)
	seen := make(map[uint64]int, len(live))
	for _, e := range live {
		seen[e.key.ID] = livePending
	}
	emitLive := func(e endedJob) bool {
		if seen[e.key.ID] == liveArchived {
			return true
		}
		seen[e.key.ID] = liveListed
		return fn(e)
	}
	stopped := false
	err := s.store.ScanArchive(q.scan, func(e store.ArchiveEntry) (bool, error) {
		for len(live) > 0 && !afterKey(live[0].key, e.Key) {
			l := live[0]
			live = live[1:]
			if l.key.ID == e.Key.ID {
				continue // the same job in both: the archive's copy wins
			}
			if !emitLive(l) {
				stopped = true
				return false, nil
			}
		}
		st, isLive := seen[e.Key.ID]
		if isLive && st == liveListed {
			return true, nil // listed already from the live set
		}
		if !q.match(e.User, e.Account, summaryState(e.Summary)) {
			return true, nil
		}
		if isLive {
			seen[e.Key.ID] = liveArchived
		}
		if !fn(endedJob{key: e.Key, user: e.User, account: e.Account, summary: e.Summary, record: e.Record}) {
			stopped = true
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("read the accounting archive: %w", err)
	}
	for _, e := range live {
		if stopped || !emitLive(e) {
			break
		}
	}
	return nil
}

// parseEndedQuery reads the filters history and usage share. A user who
// is not an admin sees only their own jobs.
func (s *Server) parseEndedQuery(r *http.Request, now time.Time) (*endedQuery, url.Values, error) {
	v := r.URL.Query()
	c := callerOf(r)
	q := &endedQuery{scan: store.ArchiveScan{User: v.Get("user"), Account: v.Get("account")}, states: map[api.JobState]bool{}}
	if !s.isAdmin(c.UID) {
		self, err := lookupIdentity(c.UID)
		if err != nil {
			return nil, nil, refuse(http.StatusForbidden, "%v", err)
		}
		if q.scan.User != "" && q.scan.User != self.name {
			return nil, nil, refuse(http.StatusForbidden, "only admins may see other users' jobs: leave out --user or ask for %s", self.name)
		}
		q.scan.User = self.name
	}
	for _, name := range []string{"user", "account"} {
		if x := v.Get(name); strings.ContainsRune(x, 0) || len(x) > 256 {
			return nil, nil, refuse(http.StatusBadRequest, "%s must be a name of at most 256 bytes", name)
		}
	}
	for _, st := range strings.Split(v.Get("state"), ",") {
		if st = strings.ToUpper(strings.TrimSpace(st)); st != "" {
			if !api.Terminal(api.JobState(st)) {
				return nil, nil, refuse(http.StatusBadRequest, "state %s is not an end state: use COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED or NODE_FAIL", st)
			}
			q.states[api.JobState(st)] = true
		}
	}
	q.scan.Since = now.Add(-24 * time.Hour)
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.scan.Since}, {"until", &q.scan.Until}} {
		if x := v.Get(t.name); x != "" {
			tm, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, nil, refuse(http.StatusBadRequest, "%s %q is not an RFC 3339 time", t.name, x)
			}
			*t.dst = tm
		}
	}
	if !q.scan.Until.IsZero() && !q.scan.Until.After(q.scan.Since) {
		return nil, nil, refuse(http.StatusBadRequest, "until (%s) must be after since (%s)", q.scan.Until.Format(time.RFC3339), q.scan.Since.Format(time.RFC3339))
	}
	return q, v, nil
}

func formatCursor(k store.ArchiveKey) string {
	return strconv.FormatInt(k.End.UnixNano(), 10) + "." + strconv.FormatUint(k.ID, 10)
}

func parseCursor(s string) (store.ArchiveKey, error) {
	end, id, ok := strings.Cut(s, ".")
	ns, err1 := strconv.ParseInt(end, 10, 64)
	n, err2 := strconv.ParseUint(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return store.ArchiveKey{}, refuse(http.StatusBadRequest, "after %q is not a cursor this server returned", s)
	}
	return store.ArchiveKey{End: time.Unix(0, ns), ID: n}, nil
}

// handleHistory answers one page of ended jobs, oldest end first. The
// records go out as the archive holds them, without decoding.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	q, v, err := s.parseEndedQuery(r, time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	limit := historyPage
	if x := v.Get("limit"); x != "" {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > historyPageMax {
			writeError(w, refuse(http.StatusBadRequest, "limit must be 1..%d", historyPageMax))
			return
		}
		limit = n
	}
	if x := v.Get("after"); x != "" {
		k, err := parseCursor(x)
		if err != nil {
			writeError(w, err)
			return
		}
		q.scan.After = &k
	}
	brief := v.Get("brief") == "1"
	var buf bytes.Buffer
	if brief {
		// Tab-separated lines, the summary copied as the index holds it:
		// no decoding, so a long listing costs little on either side.
		buf.WriteString(api.HistoryColumns + "\n")
	} else {
		buf.WriteString(`{"jobs":[`)
	}
	n := 0
	var last store.ArchiveKey
	more := false
	err = s.eachEnded(q, func(e endedJob) bool {
		if n == limit {
			more = true
			return false
		}
		if brief {
			b := buf.AvailableBuffer()
			b = append(strconv.AppendUint(b, e.key.ID, 10), '\t')
			b = append(append(b, tsvField(e.user)...), '\t')
			b = append(append(b, tsvField(e.account)...), '\t')
			b = append(strconv.AppendInt(b, e.key.End.UnixNano(), 10), '\t')
			b = append(append(b, e.summary...), '\n')
			buf.Write(b)
		} else {
			if n > 0 {
				buf.WriteByte(',')
			}
			buf.Write(e.record())
		}
		last = e.key
		n++
		return true
	})
	if err != nil {
		writeError(w, err)
		return
	}
	if brief {
		page := api.History{TSV: buf.String()}
		if more {
			page.Next = formatCursor(last)
		}
		writeJSON(w, http.StatusOK, page)
		return
	}
	buf.WriteString("]")
	if more {
		next, _ := json.Marshal(formatCursor(last))
		buf.WriteString(`,"next":`)
		buf.Write(next)
	}
	buf.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// handleUsage sums the usage of jobs that ended in the period, by account
// or by user, from the archive's summaries.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	q, v, err := s.parseEndedQuery(r, now)
	if err != nil {
		writeError(w, err)
		return
	}
	by := v.Get("by")
	if by == "" {
		by = "account"
	}
	if by != "account" && by != "user" {
		writeError(w, refuse(http.StatusBadRequest, "by must be account or user, not %q", by))
		return
	}
	rows := map[string]*api.UsageRow{}
	var decErr error
	err = s.eachEnded(q, func(e endedJob) bool {
		key := e.account
		if by == "user" {
			key = e.user
		}
		sum, err := decodeSummary(e.summary)
		if err != nil {
			decErr = fmt.Errorf("archive summary of job %d: %w", e.key.ID, err)
			return false
		}
		row := rows[key]
		if row == nil {
			row = &api.UsageRow{Key: key}
			rows[key] = row
		}
		row.Jobs++
		row.Runs += sum.Runs
		row.CPUHours += sum.CPU / 3600
		row.AllocCPUHours += sum.Alloc / 3600
		row.GPUHours += sum.GPU / 3600
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		writeError(w, err)
		return
	}
	rep := api.UsageReport{By: by, Since: q.scan.Since, Until: q.scan.Until, Rows: []api.UsageRow{}}
	if rep.Until.IsZero() {
		rep.Until = now
	}
	for _, row := range rows {
		rep.Rows = append(rep.Rows, *row)
	}
	slices.SortFunc(rep.Rows, func(a, b api.UsageRow) int { return strings.Compare(a.Key, b.Key) })
	writeJSON(w, http.StatusOK, rep)
}
