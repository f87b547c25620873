package server

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
)

// handlePriority shows pending jobs' priority factors, computed by the
// very function the placer orders the queue with
// (placement.EffectivePriority), and the fair-share standing of their
// accounts. Users see their own jobs; admins see all.
func (s *Server) handlePriority(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	admin := s.isAdmin(c.UID)
	var only uint64
	if x := r.URL.Query().Get("id"); x != "" {
		id, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			writeError(w, refuse(http.StatusBadRequest, "id %q is not a job id", x))
			return
		}
		only = id
	}
	now := time.Now()
	wts := s.cfg.Policy.Weights
	age := wts.AgeMax
	if age <= 0 {
		age = placement.DefaultAgeMax
	}
	rep := api.PriorityReport{
		Weights: api.PriorityWeights{Priority: wts.Priority, Age: wts.Age, FairShare: wts.FairShare,
			AgeMax: age.String(), HalfLife: s.shares.cfg.HalfLife.String(), GPUBilling: s.shares.cfg.GPUWeight},
		Jobs: []api.JobPriority{}, Accounts: []api.AccountShare{},
	}
	s.mu.Lock()
	if only != 0 {
		j, ok := s.jobs[only]
		switch {
		case !ok:
			s.mu.Unlock()
			writeError(w, s.notLive(&c, only))
			return
		case !admin && j.UID != c.UID:
			s.mu.Unlock()
			writeError(w, forbidden("job %d belongs to another user", only))
			return
		case j.State != api.StatePending:
			s.mu.Unlock()
			writeError(w, badState("job %d is %s: priority matters only while it is PENDING", only, j.State))
			return
		}
	}
	var shown []*job
	var accounts []string
	for _, j := range s.jobs {
		if j.State != api.StatePending || (only != 0 && j.ID != only) || (!admin && j.UID != c.UID) {
			continue
		}
		shown = append(shown, j)
		accounts = append(accounts, j.Account)
	}
	shares := s.fairShareLocked(now, accounts)
	for _, j := range shown {
		pj := j.placementJob()
		pj.FairShare = shares[j.Account].FairShare
		f := placement.EffectivePriority(pj, now, wts)
		rep.Jobs = append(rep.Jobs, api.JobPriority{ID: j.ID, User: j.User, Account: j.Account, Priority: j.Priority,
			Factors: api.PriorityFactors{Priority: f.Priority, Age: f.Age, FairShare: f.FairShare, Total: f.Total}})
	}
	seen := map[string]bool{}
	for _, a := range accounts {
		seen[a] = true
	}
	for _, sh := range sortedShares(shares) {
		if admin || seen[sh.Account] {
			rep.Accounts = append(rep.Accounts, api.AccountShare{Account: sh.Account, Shares: s.shares.shares(sh.Account),
				NormShares: sh.Shares, Usage: sh.RawUsage, NormUsage: sh.Usage, FairShare: sh.FairShare})
		}
	}
	submit := map[uint64]time.Time{}
	for _, j := range shown {
		submit[j.ID] = j.Submit
	}
	s.mu.Unlock()
	// The placer's order: effective priority, then submit time, then id.
	slices.SortFunc(rep.Jobs, func(a, b api.JobPriority) int {
		if c := cmp.Compare(b.Factors.Total, a.Factors.Total); c != 0 {
			return c
		}
		if c := submit[a.ID].Compare(submit[b.ID]); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	writeJSON(w, http.StatusOK, rep)
}
