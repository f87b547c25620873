package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBestReserveMatchesSort checks that picking the first need
// reservation candidates (runs of equal rank, bounded heap, or sort) gives
// exactly what sorting them all and taking the first need gives, on
// random lists shaped like reserve's: class by class, nodes ascending,
// long runs of equal rank (free since the same instant) and scattered
// others.
func TestBestReserveMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 6))
	for it := 0; it < 3000; it++ {
		classes := 1 + rng.IntN(3)
		n := 1 + rng.IntN(300)
		distinct := 1 + rng.IntN(6) // few ranks: long runs
		if rng.IntN(4) == 0 {
			distinct = 1 + rng.IntN(n) // many ranks: the other paths
		}
		var cs []rcand
		node := int32(0)
		perClass := make([][]int32, classes)
		for i := 0; i < n; i++ {
			c := rng.IntN(classes)
			perClass[c] = append(perClass[c], node)
			node++
		}
		for _, nodes := range perClass {
			for _, ni := range nodes {
				if rng.IntN(5) == 0 {
					continue // busy: not a candidate
				}
				r := rng.IntN(distinct)
				cs = append(cs, rcand{
					cd: candidate{node: ni, sc: score{
						link: uint8(r % 2), tier: uint8(r / 2 % 2),
						dom: float64(r % 3), total: float64(r % 5),
					}},
					idle: int64(r % 4),
				})
			}
		}
		if len(cs) == 0 {
			continue
		}
		need := 1 + rng.IntN(len(cs))
		if rng.IntN(2) == 0 {
			need = 1 + rng.IntN(min(len(cs), 4))
		}
		for _, byIdle := range []bool{true, false} {
			want := slices.Clone(cs)
			sortReserve(want, byIdle)
			got := bestReserve(slices.Clone(cs), need, byIdle)
			if fmt.Sprint(got) != fmt.Sprint(want[:need]) {
				t.Fatalf("it %d byIdle %v need %d of %d:\n got %v\nwant %v", it, byIdle, need, len(cs), got, want[:need])
			}
		}
	}
}
