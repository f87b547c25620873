package server

import (
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/jobs"
)

// Policy a site can trust. Found as: users set any priority (0..1000) and
// charged any account (`account = "bob"` was accepted).
//
//   - Priority: a user may lower a job's priority below the default; only
//     admins raise it above.
//   - Account: with associations configured (Config.Accounts, set by an
//     admin), a user charges only an account associated with them, the
//     first one by default; with none configured, only one of their own
//     groups, the primary group by default. Admins charge any account.

// checkSubmitPolicy refuses a job spec that its submitter may not have,
// and fills in the default account.
func (s *Server) checkSubmitPolicy(c Caller, who identity, spec *jobs.Spec) error {
	admin := s.isAdmin(c.UID)
	if spec.Priority > jobs.DefaultPriority && !admin {
		return forbidden("priority %d is above the default %d: only admins may raise a job's priority; leave it out or lower it",
			spec.Priority, jobs.DefaultPriority)
	}
	if len(s.cfg.Accounts) > 0 {
		allowed := s.cfg.Accounts[who.name]
		switch {
		case spec.Account == "" && len(allowed) > 0:
			spec.Account = allowed[0]
		case spec.Account == "" && !admin:
			return forbidden("user %s is associated with no account on this cluster: ask an admin to associate one", who.name)
		case spec.Account != "" && !admin && !slices.Contains(allowed, spec.Account):
			return forbidden("account %q is not one of yours (%s): use one of them, or ask an admin to associate it",
				spec.Account, strings.Join(allowed, ", "))
		}
		return nil
	}
	if spec.Account == "" || admin {
		return nil // the primary group by default (jobTemplate)
	}
	groups := groupNames(who)
	if !slices.Contains(groups, spec.Account) {
		return forbidden("account %q is not one of your groups (%s): with no account associations configured, a job is charged to one of its user's groups",
			spec.Account, strings.Join(groups, ", "))
	}
	return nil
}

// groupNames lists the names of who's primary and supplementary groups.
func groupNames(who identity) []string {
	names := []string{who.group}
	for _, gid := range who.groups {
		name := strconv.FormatUint(uint64(gid), 10)
		if g, err := user.LookupGroupId(name); err == nil {
			name = g.Name
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
