package exec

import (
	"slices"
	"testing"
)

func TestGPUShareEnv(t *testing.T) {
	gpu := GPUDevice{Index: 3, Minor: 3, Memory: 80 << 30}
	cases := []struct {
		name string
		s    Spec
		want []string // present
		not  []string // absent variable names
	}{
		{"quarter of an 80 GiB GPU", Spec{GPUs: []GPUDevice{gpu}, GPUShare: 0.25},
			[]string{"CUDA_VISIBLE_DEVICES=3", "HPC_GPU_SHARE=0.25", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=20480M"}, nil},
		{"unknown memory: no cap", Spec{GPUs: []GPUDevice{{Index: 1, Minor: 1}}, GPUShare: 0.5},
			[]string{"CUDA_VISIBLE_DEVICES=1", "HPC_GPU_SHARE=0.5"}, []string{"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"}},
		{"whole GPU: nothing about sharing", Spec{GPUs: []GPUDevice{gpu}},
			[]string{"CUDA_VISIBLE_DEVICES=3"}, []string{"HPC_GPU_SHARE", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"}},
		{"inherited cap replaced", Spec{GPUs: []GPUDevice{gpu}, GPUShare: 0.1, Env: []string{"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=1G"}},
			[]string{"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=8192M"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := JobEnv(c.s)
			for _, w := range c.want {
				if !slices.Contains(env, w) {
					t.Errorf("no %s in %v", w, env)
				}
			}
			for _, k := range c.not {
				if _, ok := envLookup(env, k); ok {
					t.Errorf("%s set in %v", k, env)
				}
			}
			if v, _ := envLookup(env, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"); c.name == "inherited cap replaced" && v != "0=8192M" {
				t.Errorf("first CUDA_MPS_PINNED_DEVICE_MEM_LIMIT is %q", v)
			}
		})
	}
}

// TestGPUSharersSeeSameDevice: two jobs sharing GPU 2 get the same
// CUDA_VISIBLE_DEVICES and caps in proportion to their shares.
func TestGPUSharersSeeSameDevice(t *testing.T) {
	gpu := GPUDevice{Index: 2, Minor: 2, Memory: 40 << 30}
	a := JobEnv(Spec{JobID: 1, GPUs: []GPUDevice{gpu}, GPUShare: 0.25})
	b := JobEnv(Spec{JobID: 2, GPUs: []GPUDevice{gpu}, GPUShare: 0.75})
	va, _ := envLookup(a, "CUDA_VISIBLE_DEVICES")
	vb, _ := envLookup(b, "CUDA_VISIBLE_DEVICES")
	ca, _ := envLookup(a, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
	cb, _ := envLookup(b, "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
	if va != "2" || vb != "2" || ca != "0=10240M" || cb != "0=30720M" {
		t.Errorf("devices %q %q, caps %q %q", va, vb, ca, cb)
	}
}
