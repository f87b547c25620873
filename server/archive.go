package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/store"
)

// archiveBatch bounds the jobs one archive commit moves, so a sweep after
// a long outage does not hold the store in one huge transaction.
const archiveBatch = 4096

// purgeEvery is how often retention deletes expired archive records, and
// purgeBatch how many at most per commit.
const (
	purgeEvery = time.Minute
	purgeBatch = 10000
)

// archiveSummary is what the end-time index keeps of an archived job:
// enough for history filters, history's table and usage sums without
// reading the record. It is stored as the tail of a brief history line
// (api.HistoryColumns from "state" on), so a listing copies it as it is.
type archiveSummary struct {
	State   api.JobState
	Name    string
	Exit    *int
	Signal  string
	Runs    int
	Elapsed float64 // seconds, over all runs
	CPU     float64 // CPU-seconds used
	PeakMem int64
	GPU     float64 // GPU-seconds
	Alloc   float64 // CPU-seconds allocated (CPUs held times elapsed)
}

// tsvField makes s safe as one tab-separated field.
func tsvField(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// encode writes the summary as tab-separated fields.
func (sum archiveSummary) encode() []byte {
	b := make([]byte, 0, 96)
	b = append(append(b, sum.State...), '\t')
	b = append(append(b, tsvField(sum.Name)...), '\t')
	if sum.Exit != nil {
		b = strconv.AppendInt(b, int64(*sum.Exit), 10)
	}
	b = append(b, '\t')
	b = append(append(b, tsvField(sum.Signal)...), '\t')
	b = append(strconv.AppendInt(b, int64(sum.Runs), 10), '\t')
	b = append(strconv.AppendFloat(b, sum.Elapsed, 'g', -1, 64), '\t')
	b = append(strconv.AppendFloat(b, sum.CPU, 'g', -1, 64), '\t')
	b = append(strconv.AppendInt(b, sum.PeakMem, 10), '\t')
	b = append(strconv.AppendFloat(b, sum.GPU, 'g', -1, 64), '\t')
	return strconv.AppendFloat(b, sum.Alloc, 'g', -1, 64)
}

// summaryState is the state field of an encoded summary.
func summaryState(b []byte) api.JobState {
	st, _, _ := bytes.Cut(b, []byte{'\t'})
	return api.JobState(st)
}

// decodeSummary reads what encode wrote.
func decodeSummary(b []byte) (archiveSummary, error) {
	f := strings.Split(string(b), "\t")
	if len(f) != 10 {
		return archiveSummary{}, fmt.Errorf("summary has %d fields, want 10", len(f))
	}
	sum := archiveSummary{State: api.JobState(f[0]), Name: f[1], Signal: f[3]}
	var errs [8]error
	if f[2] != "" {
		x, err := strconv.Atoi(f[2])
		sum.Exit, errs[0] = &x, err
	}
	sum.Runs, errs[1] = strconv.Atoi(f[4])
	sum.Elapsed, errs[2] = strconv.ParseFloat(f[5], 64)
	sum.CPU, errs[3] = strconv.ParseFloat(f[6], 64)
	sum.PeakMem, errs[4] = strconv.ParseInt(f[7], 10, 64)
	sum.GPU, errs[5] = strconv.ParseFloat(f[8], 64)
	sum.Alloc, errs[6] = strconv.ParseFloat(f[9], 64)
	return sum, errors.Join(errs[:]...)
}

func summarize(j *job) archiveSummary {
	sum := archiveSummary{State: j.State, Name: j.Name, Exit: j.ExitCode, Signal: j.Signal, Runs: len(j.Runs)}
	for _, r := range j.Runs {
		sum.Elapsed += r.Usage.ElapsedSeconds
		sum.CPU += r.Usage.CPUSeconds
		sum.Alloc += float64(r.CPUs) * r.Usage.ElapsedSeconds
		sum.GPU += r.Usage.GPUSeconds
		sum.PeakMem = max(sum.PeakMem, r.Usage.PeakMemory)
	}
	return sum
}

// archiveEnded moves every ended job whose outcome is settled (durable
// and released on its nodes) out of the live set into the store's
// archive, one commit for all of them, and charges its usage to its
// account's fair share in the same commit. Scheduling passes and
// listings then walk live jobs only; history and show read the archive.
// Only the scheduling loop calls it, so sweeps never overlap.
func (s *Server) archiveEnded(now time.Time) {
	for {
		s.mu.Lock()
		var ended []*job
		for _, j := range s.jobs {
			// A job being written (commit.go) waits for the next sweep.
			if _, busy := s.writing[j.ID]; api.Terminal(j.State) && !s.releasing[j.ID] && !busy && j.End != nil {
				ended = append(ended, j)
			}
		}
		if len(ended) == 0 {
			s.mu.Unlock()
			break
		}
		slices.SortFunc(ended, func(a, b *job) int { return cmpUint(a.ID, b.ID) })
		if len(ended) > archiveBatch {
			ended = ended[:archiveBatch]
		}
		ids := make([]uint64, len(ended))
		for i, j := range ended {
			ids[i] = j.ID
		}
		// Hold the jobs' write slots until they have left the live set,
		// so no change can write them back into it meanwhile.
		s.acquireLocked(ids)
		recs := make([]store.ArchiveRecord, 0, len(ended))
		charges := map[string]float64{}
		var encErr error
		for _, j := range ended {
			aj := j.apiJob()
			data, err := json.Marshal(aj)
			if err != nil {
				encErr = fmt.Errorf("encode job %d: %w", j.ID, err)
				break
			}
			sum := summarize(j)
			recs = append(recs, store.ArchiveRecord{ID: j.ID, End: *j.End, User: j.User, Account: j.Account, Summary: sum.encode(), Data: data})
			charges[j.Account] += sum.Alloc + s.shares.cfg.GPUWeight*sum.GPU
		}
		usage, updated := s.shares.charged(charges, now)
		s.mu.Unlock()
		if encErr == nil {
			encErr = s.store.Archive(recs, usage)
		}
		s.mu.Lock()
		if encErr != nil {
			// They stay live and are shown from memory; the next pass tries again.
			s.releaseSlotsLocked(ids)
			s.mu.Unlock()
			s.log.Error("archive ended jobs", "jobs", len(recs), "err", encErr)
			break
		}
		for _, j := range ended {
			s.countStateLocked(s.jobs[j.ID], nil)
			delete(s.jobs, j.ID)
		}
		s.shares.install(updated)
		s.releaseSlotsLocked(ids)
		s.mu.Unlock()
		if len(ended) < archiveBatch {
			break
		}
	}
	s.purgeExpired(now)
}

// purgeExpired applies the archive's retention, at most once per purgeEvery.
func (s *Server) purgeExpired(now time.Time) {
	if s.cfg.ArchiveRetention <= 0 || now.Sub(s.lastPurge) < purgeEvery {
		return
	}
	s.lastPurge = now
	for {
		n, err := s.store.PurgeArchive(now.Add(-s.cfg.ArchiveRetention), purgeBatch)
		if err != nil {
			s.log.Error("archive retention", "err", err)
			return
		}
		if n > 0 {
			s.log.Info("archive retention deleted expired jobs", "jobs", n, "retention", s.cfg.ArchiveRetention)
		}
		if n < purgeBatch {
			return
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// archivedJob reads an archived job as the API shows it.
func (s *Server) archivedJob(id uint64) (api.Job, bool, error) {
	data, ok, err := s.store.ArchivedJob(id)
	if err != nil || !ok {
		return api.Job{}, ok, err
	}
	var aj api.Job
	if err := json.Unmarshal(data, &aj); err != nil {
		return api.Job{}, false, fmt.Errorf("archived job %d: %w", id, err)
	}
	return aj, true, nil
}

// archivedStub stands in for job id once it has left the live set: a
// record that carries its owner and end state for the checks handlers
// make, and shows as the archive's copy. It is never put in s.jobs.
func (s *Server) archivedStub(id uint64) (*job, error) {
	aj, ok, err := s.archivedJob(id)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, "read job %d from the archive: %v", id, err)
	}
	if !ok {
		return nil, refuse(http.StatusNotFound, "no job %d", id)
	}
	return &job{ID: aj.ID, jobSpec: &jobSpec{User: aj.User, UID: uint32(aj.UID), Account: aj.Account}, State: aj.State, End: aj.EndTime, archived: &aj}, nil
}

// jobView is job id as the API shows it, live or archived.
func (s *Server) jobView(id uint64) (api.Job, error) {
	s.mu.Lock()
	if j, ok := s.jobs[id]; ok {
		aj := j.apiJob()
		s.mu.Unlock()
		return aj, nil
	}
	s.mu.Unlock()
	j, err := s.archivedStub(id)
	if err != nil {
		return api.Job{}, err
	}
	return *j.archived, nil
}

// notLive is the refusal to change job id, which is not in the live set:
// it ended and was archived, or it never existed.
//
// c is who asks (nil: the system): another user's ended job is refused as
// its live job would be, without telling its end state.
func (s *Server) notLive(c *Caller, id uint64) error {
	if aj, ok, err := s.archivedJob(id); err == nil && ok {
		if c != nil && uint32(aj.UID) != c.UID && !s.isAdmin(c.UID) {
			return forbidden("job %d belongs to another user (%s): you can change only your own jobs", id, aj.User)
		}
		return badState("job %d already ended (%s)", id, aj.State)
	}
	return notFound("no job %d", id)
}
