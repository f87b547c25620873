# A gang of two nodes that start together; each runs the same command.
job "multinode" {
  walltime = "00:10:00"
  nodes    = 2

  resources {
    cpus   = 2
    memory = "1GiB"
  }

  task {
    command = "/bin/sh"
    args    = ["-c", "echo node $(hostname) of a two-node job; sleep 5"]
  }
}
