job "bad" {
  walltime = "2 hours"
  resources {
    memory = "64GB"
  }
  task { command = "/bin/true" }
}
