// Package exec runs one job on a node for real: in its own cgroup (v1 on
// hybrid hosts, v2 on unified ones, rlimits and process-group kill where
// neither is usable), as the submitting user, with walltime enforcement,
// OOM detection, usage accounting and GPU isolation.
//
// The design follows runc and containerd-shim. The agent (hpcd) re-executes
// itself as a small shim in a new session, so that a job survives a crash of
// the agent. The shim blocks on a pipe until the agent has put it into the
// job's cgroup, then starts the job through a second re-execution of the same
// binary (the "init" stage) that already runs with the user's credentials:
// it opens the output files as that user, enters the working directory,
// applies rlimits in the fallback mode and finally execve()s the job. So the
// job's first instruction runs inside its cgroup, and nothing is ever created
// as root on the user's behalf. The shim then waits for the job, enforces its
// walltime, detects an OOM kill, reads usage and writes the outcome into the
// job's state directory atomically. Any later agent can adopt the job from
// that directory: Handle.Wait watches the shim through a pidfd and reads the
// result file.
//
// With Config.Spawner (hpcd sets it), plain jobs (cgroup v1, no checkpoint)
// take a faster path: one long-lived spawner per node (spawner.go) forks
// them without any Go re-execution, from a thread that first moved into a
// pooled cgroup slot, reaps them, and journals their outcomes; such a job
// has no state directory of its own (see spawner.go for its files).
//
// State directory layout, one directory per job (<StateDir>/<jobID>/):
//
//	record.json  the launch record: spec, isolation, cgroup parent, grace
//	job.sh       the script of a script job (owned by the job's user, 0400)
//	shim.pid     shim pid and /proc start time (identity across pid reuse)
//	job.pid      job pid and start time, written once the job runs
//	cancel.json  present once a cancel was requested, with its reason
//	result.json  the Outcome, written atomically by the shim (or the agent
//	             when the shim died)
//	shim.log     the shim's own log
package exec
