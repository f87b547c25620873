# A shell script job. The heredoc (<<-EOT) strips the common indentation;
# the script runs with /bin/sh (or its #! line) in the directory you
# submitted from. Shell ${VAR} and $VAR pass through; only ${var.x} is HCL.
variable "greeting" { default = "hello" }

job "script" {
  walltime = "5m"
  output   = "%x-%j.out"
  error    = "%x-%j.err"

  resources {
    cpus   = 1
    memory = "256MiB"
  }

  task {
    env = { GREETING = var.greeting }
    script = <<-EOT
      echo "$GREETING from job $HPC_JOB_ID on $(hostname)"
      for i in 1 2 3; do
        echo "step $i"
        sleep 1
      done
    EOT
  }
}
