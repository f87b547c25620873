// Package jobs parses and validates HCL job files.
//
// A job file is the user-facing contract of the batch system: a handful of
// `variable` blocks and exactly one `job` block describing what to run and
// what it needs (CPUs, memory, GPUs, nodes, walltime, checkpoint policy).
// Parse turns such a file into a validated, normalised Spec or, on any
// mistake, an *Error carrying every HCL diagnostic with its file:line:col,
// so that `hpcsub validate`, `hpcsub submit` and the server's API all report
// the same messages. Nothing partially parsed is ever returned.
//
// Job files come from users and reach the server, so every value is bounded
// and the parser is guarded against inputs that could exhaust the stack or
// memory (deep nesting, for-expressions, amplification through variables).
package jobs
