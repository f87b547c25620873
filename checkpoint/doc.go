// Package checkpoint owns checkpoint-restart: the rule that decides whether
// a run that ended is the job's end or a restart (Decide), the policy a job
// file declares (Policy), when a running job is due a checkpoint (Due), and
// the transparent mode's CRIU driver (CRIU).
//
// The rule is a pure function so that the server, the agent's reconcile
// and the tests all apply the same one: a job the system stopped (the
// warning before its walltime, preemption, drain with requeue, a lost node)
// is requeued while restarts remain, whatever its exit status; a job that
// ended on its own is finished, except that exit code 85 ("checkpoint
// saved, run me again") and the exit codes the job declares retryable
// restart it too.
package checkpoint
