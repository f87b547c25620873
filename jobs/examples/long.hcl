# A job that wants both CPUs of the tour's 2-CPU machine for ten minutes:
# while it waits, `hpcsub queue` says what it waits for.
job "long" {
  walltime = "10m"

  resources {
    cpus   = 2
    memory = "256MiB"
  }

  task {
    command = "/bin/sleep"
    args    = ["600"]
  }
}
