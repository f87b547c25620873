package server

import (
	"fmt"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Limits keep one user from taking the daemon (and so everyone's jobs)
// down: found as 300,000 jobs queued by one user in six seconds (1 GB RSS,
// 12 s for `queue --all`) and 21,000 idle connections from one uid that
// used up the daemon's descriptors until other users' launches failed.
// Zero fields take the defaults below; a negative value means no limit.
type Limits struct {
	// MaxQueuedPerUser bounds a user's PENDING and HELD jobs (array tasks
	// count one each); a submit beyond it is refused.
	MaxQueuedPerUser int
	// MaxRunningPerUser bounds a user's running jobs; the rest wait with
	// reason MaxJobsPerUser.
	MaxRunningPerUser int
	// MaxArraySize bounds the tasks of one array.
	MaxArraySize int
	// MaxConnsPerUser bounds the open API connections of one uid (root's
	// are not counted).
	MaxConnsPerUser int
	// IdleTimeout closes a connection that sent nothing for this long.
	IdleTimeout time.Duration
	// FDReserve is how many descriptors are kept free for launches and the
	// store: a connection that would eat into them is refused.
	FDReserve int
	// TokenTTL is how long a user's HTTPS token lasts (DefaultTokenTTL;
	// negative: forever).
	TokenTTL time.Duration
}

// Defaults of Limits, sized so that a 2-CPU login node running the daemon
// stays responsive (a full queue of one user is a few MB and `queue` of it
// a fraction of a second).
const (
	DefaultMaxQueuedPerUser  = 10_000
	DefaultMaxRunningPerUser = 2_000
	DefaultMaxArraySize      = 10_000
	DefaultMaxConnsPerUser   = 64
	DefaultIdleTimeout       = time.Minute
	DefaultFDReserve         = 256
)

// withDefaults fills zero fields with the defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxQueuedPerUser, DefaultMaxQueuedPerUser)
	def(&l.MaxRunningPerUser, DefaultMaxRunningPerUser)
	def(&l.MaxArraySize, DefaultMaxArraySize)
	def(&l.MaxConnsPerUser, DefaultMaxConnsPerUser)
	def(&l.FDReserve, DefaultFDReserve)
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.TokenTTL == 0 {
		l.TokenTTL = DefaultTokenTTL
	}
	return l
}

// queued reports whether a job in state st counts against its user's
// queued limit.
func queued(st api.JobState) bool {
	return st == api.StatePending || st == api.StateHeld
}

// countLocked moves a job's count from its old record to its new one
// (either may be nil); s.mu held. Every install of a job record goes
// through it so the per-user counts stay exact without scanning.
func (s *Server) countLocked(old, new *job) {
	s.countStateLocked(old, new) // statecounts.go
	if old != nil && queued(old.State) {
		s.queuedBy[old.UID]--
	}
	if new != nil && queued(new.State) {
		s.queuedBy[new.UID]++
	}
}

// reserveQueued counts n jobs about to be created for uid, or refuses
// when that would pass the user's limit; cancelReserve undoes it when the
// jobs could not be stored. Reserving before the commit keeps concurrent
// submits from passing the limit together.
func (s *Server) reserveQueued(uid uint32, n int) error {
	limit := s.cfg.Limits.MaxArraySize
	if limit > 0 && n > limit {
		return refusal(ErrLimit, "an array of %d tasks is over this cluster's limit: at most %d per array; split it, or ask an admin", n, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	limit = s.cfg.Limits.MaxQueuedPerUser
	if have := s.queuedBy[uid]; limit > 0 && have+n > limit {
		return refusal(ErrLimit, "you have %d jobs queued and this submit adds %d: at most %d per user may wait; submit more once some have started, or cancel some",
			have, n, limit)
	}
	s.queuedBy[uid] += n
	return nil
}

func (s *Server) cancelReserve(uid uint32, n int) {
	s.mu.Lock()
	s.queuedBy[uid] -= n
	s.mu.Unlock()
}

// runningLimitLocked returns, for the pending jobs of the snapshot being
// built, whether the user of j may start another job; it counts the
// starts it allows. s.mu held.
func (s *Server) runningLimitLocked(running map[uint32]int, j *job) bool {
	limit := s.cfg.Limits.MaxRunningPerUser
	if limit <= 0 {
		return true
	}
	if running[j.UID] >= limit {
		j.waitReason, j.reservedStart = "MaxJobsPerUser", time.Time{}
		return false
	}
	running[j.UID]++
	return true
}

// String is the limits in force, for the log at start.
func (l Limits) String() string {
	return fmt.Sprintf("queued/user=%d running/user=%d array=%d conns/user=%d idle=%s fd_reserve=%d",
		l.MaxQueuedPerUser, l.MaxRunningPerUser, l.MaxArraySize, l.MaxConnsPerUser, l.IdleTimeout, l.FDReserve)
}
