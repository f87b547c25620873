# A script kept in its own file beside the job file (read at submit) and
# run with its #! line, as sbatch runs it.
job "from-file" {
  walltime = "5m"

  task {
    script_file = "run.sh"
  }
}
