package resources

import (
	"testing"
)

const gib = 1 << 30

func TestVectorArithmetic(t *testing.T) {
	a := Vector{CPUs: 8, Memory: 64 * gib, GPUs: 4, GPUMemory: 160 * gib}
	b := Vector{CPUs: 2, Memory: 16 * gib, GPUs: 1, GPUMemory: 40 * gib}
	tests := []struct {
		name      string
		got, want Vector
	}{
		{"add", a.Add(b), Vector{10, 80 * gib, 5, 200 * gib}},
		{"sub", a.Sub(b), Vector{6, 48 * gib, 3, 120 * gib}},
		{"sub-negative", b.Sub(a), Vector{-6, -48 * gib, -3, -120 * gib}},
		{"scale", b.Scale(3), Vector{6, 48 * gib, 3, 120 * gib}},
		{"scale-zero", b.Scale(0), Vector{}},
		{"add-sub-roundtrip", a.Add(b).Sub(b), a},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestVectorPredicates(t *testing.T) {
	capacity := Vector{CPUs: 8, Memory: 64 * gib, GPUs: 4, GPUMemory: 160 * gib}
	tests := []struct {
		name                      string
		v                         Vector
		fits, isZero, nonNegative bool
	}{
		{"zero", Vector{}, true, true, true},
		{"exact", capacity, true, false, true},
		{"one-cpu-over", Vector{CPUs: 9}, false, false, true},
		{"memory-over", Vector{Memory: 64*gib + 1}, false, false, true},
		{"gpu-over", Vector{GPUs: 5}, false, false, true},
		{"gpumem-over", Vector{GPUMemory: 161 * gib}, false, false, true},
		{"negative", Vector{CPUs: -1}, true, false, false},
	}
	for _, tt := range tests {
		if got := tt.v.Fits(capacity); got != tt.fits {
			t.Errorf("%s: Fits = %v, want %v", tt.name, got, tt.fits)
		}
		if got := tt.v.IsZero(); got != tt.isZero {
			t.Errorf("%s: IsZero = %v, want %v", tt.name, got, tt.isZero)
		}
		if got := tt.v.NonNegative(); got != tt.nonNegative {
			t.Errorf("%s: NonNegative = %v, want %v", tt.name, got, tt.nonNegative)
		}
	}
}

func TestVectorShares(t *testing.T) {
	tests := []struct {
		name     string
		v, c     Vector
		shares   [4]float64
		dominant float64
	}{
		{"gpu-dominant", Vector{CPUs: 2, Memory: 8 * gib, GPUs: 2}, Vector{CPUs: 16, Memory: 64 * gib, GPUs: 4, GPUMemory: 320 * gib},
			[4]float64{0.125, 0.125, 0.5, 0}, 0.5},
		{"cpu-node-has-no-gpus", Vector{CPUs: 4, GPUs: 1}, Vector{CPUs: 8, Memory: gib},
			[4]float64{0.5, 0, 0, 0}, 0.5},
		{"zero", Vector{}, Vector{CPUs: 8}, [4]float64{}, 0},
		{"full", Vector{1, 1, 1, 1}, Vector{1, 1, 1, 1}, [4]float64{1, 1, 1, 1}, 1},
	}
	for _, tt := range tests {
		if got := tt.v.Shares(tt.c); got != tt.shares {
			t.Errorf("%s: Shares = %v, want %v", tt.name, got, tt.shares)
		}
		if got := tt.v.DominantShare(tt.c); got != tt.dominant {
			t.Errorf("%s: DominantShare = %v, want %v", tt.name, got, tt.dominant)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1024, "1KiB"},
		{512 << 20, "512MiB"},
		{3 << 29, "1.5GiB"},
		{64 * gib, "64GiB"},
		{2 << 40, "2TiB"},
		{3 << 50, "3PiB"},
		{4096 << 50, "4096PiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	v := Vector{CPUs: 4, Memory: 16 * gib, GPUs: 1, GPUMemory: 80 * gib}
	if got, want := v.String(), "cpus=4 mem=16GiB gpus=1 gpumem=80GiB"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
