# The second step of a pipeline: it starts only after the job named "sweep"
# (all of its array elements) completed. On the command line the same is
#   hpcsub submit --afterok 42 pipeline.hcl
variable "input" { default = "sweep" }

job "merge-${var.input}" {
  walltime   = "5m"
  depends_on = ["afterok:${var.input}"]

  task {
    script = <<-EOT
      #!/bin/bash
      set -euo pipefail
      cat sweep-*.out > "merged-${HPC_JOB_ID}.txt"
      echo "merged $(ls sweep-*.out | wc -l) files"
    EOT
  }
}
