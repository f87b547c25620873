# An array of 10 tasks, indices 0..9, at most 3 running at once. Each task
# reads its index from HPC_ARRAY_INDEX and writes its own output file.
job "sweep" {
  walltime = "2m"
  output   = "sweep-%j-%a.out"

  task {
    script = <<-EOT
      echo "array task $HPC_ARRAY_INDEX starting"
      sleep "$((HPC_ARRAY_INDEX % 3 + 1))"
      echo "array task $HPC_ARRAY_INDEX done"
    EOT
  }

  array {
    count       = 10
    max_running = 3
  }
}
