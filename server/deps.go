package server

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/jobs"
)

// jobDep is one resolved dependency: job JobID, or every element of an
// array when Count > 0 (elements have the consecutive ids JobID ..
// JobID+Count-1, created in one commit).
type jobDep struct {
	Type  string `json:"type"`
	JobID uint64 `json:"job_id"`
	Count int    `json:"count,omitempty"`
	Label string `json:"label"` // as shown: "afterok:42", "afterany:42_[*]"
}

// ReasonDependency and ReasonDependencyNeverSatisfied are the reasons of a
// job that waits for others, and of one whose wait can never end, as Slurm
// names them.
const (
	ReasonDependency               = "Dependency"
	ReasonDependencyNeverSatisfied = "DependencyNeverSatisfied"
)

// depTarget is what a dependency needs to know of one job: live, or read
// from the archive once it ended.
type depTarget struct {
	id         uint64
	uid        uint32
	user, name string
	state      api.JobState
	started    bool
	arrayID    uint64
	arrayIndex int
	count      int // array_task_count, live jobs only
}

// lookupLocked finds job id, live or archived. Ended jobs are immutable,
// so what the archive says is cached in memory. s.mu held.
func (s *Server) lookupLocked(id uint64) (depTarget, bool) {
	if j, ok := s.jobs[id]; ok {
		return depTarget{id: id, uid: j.UID, user: j.User, name: j.Name, state: j.State, started: j.Start != nil,
			arrayID: j.ArrayJobID, arrayIndex: j.ArrayIndex, count: j.ArrayTaskCount}, true
	}
	if t, ok := s.endedDeps[id]; ok {
		return t, true
	}
	aj, ok, err := s.archivedJob(id)
	if err != nil || !ok {
		return depTarget{}, false
	}
	t := depTarget{id: id, uid: uint32(aj.UID), user: aj.User, name: aj.Name, state: aj.State, started: aj.StartTime != nil,
		arrayID: aj.ArrayJobID, arrayIndex: -1}
	if aj.ArrayIndex != nil {
		t.arrayIndex = *aj.ArrayIndex
	}
	if s.endedDeps == nil {
		s.endedDeps = map[uint64]depTarget{}
	}
	if len(s.endedDeps) < maxEndedDeps {
		s.endedDeps[id] = t
	}
	return t, true
}

// maxEndedDeps bounds the cache of ended jobs that dependencies name.
const maxEndedDeps = 100000

// arrayCountLocked is the number of elements of array id: from a live
// element, else by walking the archive from the array's id.
func (s *Server) arrayCountLocked(id uint64) int {
	for _, j := range s.jobs {
		if j.ArrayJobID == id && j.ArrayTaskCount > 0 {
			return j.ArrayTaskCount
		}
	}
	n := 0
	for n < 100000 {
		t, ok := s.lookupLocked(id + uint64(n))
		if !ok || t.arrayID != id {
			break
		}
		n++
	}
	return n
}

// resolveDepsLocked turns dependencies as written (ids, array elements,
// names of the user's jobs) into job ids. s.mu held.
func (s *Server) resolveDepsLocked(deps []jobs.Dependency, uid uint32, admin bool) ([]jobDep, *requestError) {
	var out []jobDep
	for _, d := range deps {
		var target depTarget
		found := false
		if id, idx, elem := strings.Cut(d.Target, "_"); elem {
			arrayID, _ := strconv.ParseUint(id, 10, 64)
			n, _ := strconv.Atoi(idx)
			for i := 0; i < s.arrayCountLocked(arrayID); i++ {
				if t, ok := s.lookupLocked(arrayID + uint64(i)); ok && t.arrayID == arrayID && t.arrayIndex == n {
					target, found = t, true
					break
				}
			}
		} else if id, err := strconv.ParseUint(d.Target, 10, 64); err == nil {
			target, found = s.lookupLocked(id)
		} else {
			// A name: the user's latest live job of that name.
			for _, j := range s.jobs {
				if j.UID == uid && j.Name == d.Target && (!found || j.ID > target.id) {
					target, found = depTarget{id: j.ID, uid: j.UID, user: j.User, arrayID: j.ArrayJobID, arrayIndex: j.ArrayIndex}, true
				}
			}
			if found && target.arrayID != 0 {
				target, _ = s.lookupLocked(target.arrayID) // all of the array
			}
		}
		if !found {
			return nil, refuse(http.StatusBadRequest, "dependency %s: no such job of yours (names match live jobs only; see `hpcsub queue --me`)", d)
		}
		if target.uid != uid && !admin {
			return nil, refuse(http.StatusForbidden, "dependency %s: job %d belongs to another user (%s); you can depend only on your own jobs", d, target.id, target.user)
		}
		dep := jobDep{Type: d.Type, JobID: target.id, Label: d.Type + ":" + strconv.FormatUint(target.id, 10)}
		switch {
		case target.arrayID == target.id && !strings.Contains(d.Target, "_"):
			dep.Count = s.arrayCountLocked(target.id)
			dep.Label += "_[*]"
		case target.arrayID != 0:
			dep.Label = fmt.Sprintf("%s:%d_%d", d.Type, target.arrayID, target.arrayIndex)
		}
		out = append(out, dep)
	}
	return out, nil
}

// depStatus says where a dependency stands.
type depStatus int

const (
	depWaiting depStatus = iota
	depMet
	depNever
)

// depStatusLocked evaluates one dependency against its target jobs, with
// Slurm's meaning: after = all started (or ended), afterok = all
// COMPLETED, afternotok = all ended and one did not complete, afterany =
// all ended. It also says why a dependency can never be met. s.mu held.
func (s *Server) depStatusLocked(d jobDep) (depStatus, string) {
	n := max(d.Count, 1)
	ended, known := 0, 0
	var failed *depTarget
	for i := 0; i < n; i++ {
		t, ok := s.lookupLocked(d.JobID + uint64(i))
		if !ok {
			continue // purged by retention: its outcome is unknown
		}
		known++
		switch {
		case t.state == api.StateCompleted:
			ended++
		case api.Terminal(t.state):
			ended++
			if failed == nil {
				failed = &t
			}
		case d.Type == jobs.DepAfter && t.started:
			ended++ // started is enough
		}
	}
	if known == 0 {
		if d.Type == jobs.DepAfter || d.Type == jobs.DepAfterAny {
			return depMet, ""
		}
		return depNever, fmt.Sprintf("%s: job %d is no longer known", d.Label, d.JobID)
	}
	all := ended == known
	switch d.Type {
	case jobs.DepAfterOK:
		if failed != nil {
			return depNever, fmt.Sprintf("%s: job %d ended %s", d.Label, failed.id, failed.state)
		}
	case jobs.DepAfterNotOK:
		if all && failed == nil {
			return depNever, fmt.Sprintf("%s: job %d COMPLETED", d.Label, d.JobID)
		}
	}
	if all {
		return depMet, ""
	}
	return depWaiting, ""
}

// depsWaitLocked reports whether job j still waits for a dependency, and
// says which in its reason. s.mu held.
func (s *Server) depsWaitLocked(j *job) bool {
	for _, d := range j.Deps {
		if st, _ := s.depStatusLocked(d); st != depMet {
			j.waitReason, j.reservedStart = ReasonDependency+" ("+d.Label+")", time.Time{}
			return true
		}
	}
	return false
}

// cancelUnsatisfiable ends, at once, every waiting job with a dependency
// that can never be met: CANCELLED, reason DependencyNeverSatisfied,
// committed before anyone sees it.
// withDeps are the waiting jobs with dependencies (waitsOnDeps), as the
// scheduling pass's walk of the live jobs found them.
func (s *Server) cancelUnsatisfiable(withDeps []*job, now time.Time) {
	if len(withDeps) == 0 {
		return
	}
	s.mu.Lock()
	var ids []uint64
	for _, j := range withDeps {
		for _, d := range j.Deps {
			if st, _ := s.depStatusLocked(d); st == depNever {
				ids = append(ids, j.ID)
				break
			}
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	_, err := s.updateJobs(ids, func(j *job) error {
		if j.State != api.StatePending && j.State != api.StateHeld {
			return skipJob
		}
		for _, d := range j.Deps {
			if st, why := s.depStatusLocked(d); st == depNever {
				j.CancelRequested = true
				j.to(api.StateCancelled, ReasonDependencyNeverSatisfied+" ("+why+")", now)
				return nil
			}
		}
		return skipJob
	})
	if err != nil {
		s.log.Error("end jobs whose dependency can never be met", "err", err)
	}
}

// waitsOnDeps says whether j is a job that waits on its dependencies:
// PENDING or HELD, not being cancelled.
func waitsOnDeps(j *job) bool {
	return len(j.Deps) > 0 && (j.State == api.StatePending || j.State == api.StateHeld) && !j.CancelRequested
}

// sortJobs orders jobs by id.
func sortJobs(js []*job) {
	slices.SortFunc(js, func(a, b *job) int { return cmp.Compare(a.ID, b.ID) })
}
