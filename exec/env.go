package exec

import (
	"strconv"
	"strings"
)

// JobEnv builds a job's final environment: Spec.Env first, then the HPC_*
// and CUDA variables, which replace any inherited value of the same name
// (glibc's getenv returns the first match, so a duplicate would not do).
func JobEnv(s Spec) []string {
	var add []string
	set := func(k, v string) { add = append(add, k+"="+v) }
	set("HPC_JOB_ID", strconv.FormatUint(s.JobID, 10))
	set("HPC_JOB_NAME", s.Name)
	set("HPC_NODELIST", strings.Join(s.NodeList, ","))
	if s.ArrayIndex >= 0 {
		set("HPC_ARRAY_INDEX", strconv.Itoa(s.ArrayIndex))
	}
	set("HPC_RESTART_COUNT", strconv.Itoa(s.RestartCount))
	if s.CheckpointDir != "" {
		set("HPC_CHECKPOINT_DIR", s.CheckpointDir)
	}
	idx := make([]string, len(s.GPUs))
	for i, g := range s.GPUs {
		idx[i] = strconv.Itoa(g.Index)
	}
	// An empty CUDA_VISIBLE_DEVICES hides every GPU from CUDA; "void" is
	// nvidia-container-runtime's way of saying "no GPU" (an empty value
	// there would mean "all").
	set("CUDA_VISIBLE_DEVICES", strings.Join(idx, ","))
	if len(idx) == 0 {
		set("NVIDIA_VISIBLE_DEVICES", "void")
	} else {
		set("NVIDIA_VISIBLE_DEVICES", strings.Join(idx, ","))
	}
	add = append(add, gpuShareEnv(s)...)
	// NVML numbers GPUs in PCI bus order; CUDA must use the same order for
	// the indices above to name the same devices.
	set("CUDA_DEVICE_ORDER", "PCI_BUS_ID")

	ours := map[string]bool{"HPC_ARRAY_INDEX": true, "HPC_CHECKPOINT_DIR": true, shimEnv: true}
	for _, kv := range add {
		ours[kv[:strings.IndexByte(kv, '=')]] = true
	}
	out := make([]string, 0, len(s.Env)+len(add))
	for _, kv := range s.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !ours[k] {
			out = append(out, kv)
		}
	}
	return append(out, add...)
}

// envLookup returns the value of key in env (first match, as getenv does).
func envLookup(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
