#!/bin/bash
# An sbatch-style script, unchanged: bash features, ${VAR} and $VAR.
set -euo pipefail
echo "job ${HPC_JOB_ID} (${HPC_JOB_NAME}) on ${HPC_NODELIST} with ${HPC_CPUS:-?} CPUs"
echo "submitted from ${HPC_SUBMIT_DIR:-$PWD}, home ${HOME:-none}"
words=(one two three)
echo "${#words[@]} words"
