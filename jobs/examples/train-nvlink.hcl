# Four NVLink-connected GPUs on one node for data-parallel training, with
# application-level checkpoints: the job gets SIGUSR1 ten minutes before its
# walltime (or preemption, or a drain), saves its state under $HPC_CHECKPOINT_DIR (train.py
# reads it from the environment) and is
# requeued; on restart it resumes from there ($HPC_RESTART_COUNT > 0).
#
#   hpcsub submit -var epochs=10 train-nvlink.hcl
variable "epochs" { default = 90 }

job "train-resnet" {
  account  = "ml"
  priority = 200
  walltime = "1-00:00:00"
  requeue  = true

  resources {
    cpus   = 32
    memory = "256GiB"
    gpu {
      count  = 4
      model  = "H100"
      memory = "40GiB"
      link   = "nvlink"
    }
  }

  task {
    command = "torchrun"
    args = [
      "--nproc_per_node=4", "train.py",
      "--epochs", "${var.epochs}",
    ]
    env = {
      NCCL_DEBUG = "INFO"
      OMP_NUM_THREADS = 8
    }
  }

  output = "train-%j.out"
  error  = "train-%j.err"

  checkpoint {
    mode         = "signal"
    signal       = "SIGUSR1"
    warn         = "10m"
    interval     = "1h"
    max_restarts = 5
  }
}
