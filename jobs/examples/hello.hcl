# The smallest useful job: one CPU, one line of output in hpc-<id>.out.
job "hello" {
  walltime = "1m"

  task {
    command = "/bin/echo"
    args    = ["hello from", "hpc"]
  }
}
