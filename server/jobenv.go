package server

import (
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/placement"
)

// slurmEnv is what a job finds in its environment besides the executor's
// HPC_JOB_ID, HPC_JOB_NAME, HPC_NODELIST and CUDA variables: the
// equivalents of SLURM_CPUS_ON_NODE, SLURM_MEM_PER_NODE (MiB, as Slurm),
// SLURM_SUBMIT_DIR, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_COUNT,
// SLURM_JOB_NUM_NODES and SLURM_JOB_GPUS for the part on node a.
func (j *job) slurmEnv(a placement.NodeAlloc) []string {
	cpus := len(a.CPUs)
	if cpus == 0 {
		cpus = j.CPUs
	}
	mem := a.Memory
	if mem == 0 {
		mem = j.Memory
	}
	gpus := make([]string, len(a.GPUs))
	for i, g := range a.GPUs {
		gpus[i] = strconv.Itoa(g)
	}
	env := []string{
		"HPC_CPUS=" + strconv.Itoa(cpus),
		"HPC_MEM=" + strconv.FormatInt(mem>>20, 10),
		"HPC_NNODES=" + strconv.Itoa(max(len(j.Alloc), 1)),
		"HPC_GPUS=" + strings.Join(gpus, ","),
		"HPC_ACCOUNT=" + j.Account,
	}
	if j.SubmitDir != "" {
		env = append(env, "HPC_SUBMIT_DIR="+j.SubmitDir)
	}
	if j.ArrayJobID != 0 {
		env = append(env,
			"HPC_ARRAY_JOB_ID="+strconv.FormatUint(j.ArrayJobID, 10),
			"HPC_ARRAY_TASK_COUNT="+strconv.Itoa(j.ArrayTaskCount))
	}
	return env
}
