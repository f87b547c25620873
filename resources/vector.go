// Package resources describes what a node has and what a job asks for:
// resource vectors with the arithmetic the placer needs, GPU interconnect
// levels and topology fixtures. Reading them off a real host is package
// resources/inventory's job.
package resources

import "fmt"

// Vector is an amount of every schedulable resource on one node. Memory
// and GPUMemory are bytes; CPUs and GPUs are whole devices.
type Vector struct {
	CPUs      int64 `json:"cpus"`
	Memory    int64 `json:"memory"`
	GPUs      int64 `json:"gpus"`
	GPUMemory int64 `json:"gpu_memory"`
}

// Add returns v+o.
func (v Vector) Add(o Vector) Vector {
	return Vector{v.CPUs + o.CPUs, v.Memory + o.Memory, v.GPUs + o.GPUs, v.GPUMemory + o.GPUMemory}
}

// Sub returns v-o; callers check Fits first when a negative result would be a bug.
func (v Vector) Sub(o Vector) Vector {
	return Vector{v.CPUs - o.CPUs, v.Memory - o.Memory, v.GPUs - o.GPUs, v.GPUMemory - o.GPUMemory}
}

// Scale returns v with every dimension multiplied by n (a gang of n nodes).
func (v Vector) Scale(n int64) Vector {
	return Vector{v.CPUs * n, v.Memory * n, v.GPUs * n, v.GPUMemory * n}
}

// Fits reports whether v fits inside capacity c in every dimension.
func (v Vector) Fits(c Vector) bool {
	return v.CPUs <= c.CPUs && v.Memory <= c.Memory && v.GPUs <= c.GPUs && v.GPUMemory <= c.GPUMemory
}

// IsZero reports whether every dimension is zero.
func (v Vector) IsZero() bool { return v == Vector{} }

// NonNegative reports whether no dimension is below zero.
func (v Vector) NonNegative() bool {
	return v.CPUs >= 0 && v.Memory >= 0 && v.GPUs >= 0 && v.GPUMemory >= 0
}

// Shares returns each dimension of v as a fraction of capacity c; a
// dimension that c lacks counts as 0 (it cannot be the dominant one).
func (v Vector) Shares(c Vector) [4]float64 {
	f := func(a, b int64) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	return [4]float64{f(v.CPUs, c.CPUs), f(v.Memory, c.Memory), f(v.GPUs, c.GPUs), f(v.GPUMemory, c.GPUMemory)}
}

// DominantShare is the largest share of v in c (Dominant Resource Fairness).
func (v Vector) DominantShare(c Vector) float64 {
	m := 0.0
	for _, s := range v.Shares(c) {
		if s > m {
			m = s
		}
	}
	return m
}

func (v Vector) String() string {
	return fmt.Sprintf("cpus=%d mem=%s gpus=%d gpumem=%s", v.CPUs, FormatBytes(v.Memory), v.GPUs, FormatBytes(v.GPUMemory))
}

// FormatBytes prints n with the largest binary unit that keeps it whole
// enough to read (e.g. 64GiB, 1.5GiB, 512MiB).
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d%s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}
