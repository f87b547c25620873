package exec

import (
	"strconv"
	"strings"
)

// gpuShareEnv is the environment of a job that shares its GPUs with other
// jobs (Spec.GPUShare > 0). Sharers of one GPU all see it under the same
// CUDA_VISIBLE_DEVICES; what keeps them within their share is CUDA MPS:
// CUDA_MPS_PINNED_DEVICE_MEM_LIMIT caps the device memory each client may
// allocate ("0=10240M": device ordinals as the job sees them, so 0..n-1
// after CUDA_VISIBLE_DEVICES) and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE its
// share of the SMs. Both bind only when an MPS control daemon serves the
// GPU; without one the driver enforces nothing and the share is advisory
// (docs/user-guide.md). HPC_GPU_SHARE tells the job its share either way.
func gpuShareEnv(s Spec) []string {
	if s.GPUShare <= 0 || s.GPUShare >= 1 || len(s.GPUs) == 0 {
		return nil
	}
	out := []string{
		"HPC_GPU_SHARE=" + strconv.FormatFloat(s.GPUShare, 'f', -1, 64),
		"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=" + strconv.Itoa(max(1, int(s.GPUShare*100+0.5))),
	}
	var lim []string
	for i, g := range s.GPUs {
		if g.Memory <= 0 {
			continue // unknown size: no cap to compute
		}
		mib := int64(float64(g.Memory)*s.GPUShare) >> 20
		lim = append(lim, strconv.Itoa(i)+"="+strconv.FormatInt(max(mib, 1), 10)+"M")
	}
	if len(lim) > 0 {
		out = append(out, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT="+strings.Join(lim, ","))
	}
	return out
}
