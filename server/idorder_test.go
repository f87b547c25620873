package server

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortByID: dense, sparse, short and duplicated ids all come out in
// the order of a comparison sort, every job kept.
func TestSortByID(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	perm := func(n int, base, step uint64) []uint64 {
		ids := make([]uint64, n)
		for i, p := range rng.Perm(n) {
			ids[i] = base + uint64(p)*step
		}
		return ids
	}
	tests := []struct {
		name string
		ids  []uint64
	}{
		{"dense", perm(5000, 1, 1)},
		{"dense with gaps", perm(5000, 100_000, 3)},
		{"sparse", perm(5000, 7, 1000)},
		{"short", perm(40, 1, 1)},
		{"duplicate", append(perm(1000, 1, 1), 500)},
		{"one", []uint64{42}},
		{"none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := make([]*job, len(tt.ids))
			for i, id := range tt.ids {
				js[i] = &job{ID: id}
			}
			sortByID(js)
			got := make([]uint64, len(js))
			for i, j := range js {
				got[i] = j.ID
			}
			want := slices.Sorted(slices.Values(tt.ids))
			if !slices.Equal(got, want) {
				t.Errorf("sortByID gave %d ids, first %v; want %d, first %v", len(got), got[:min(5, len(got))], len(want), want[:min(5, len(want))])
			}
		})
	}
}
