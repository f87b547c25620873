package virtual

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hpc-sched/hpc/resources/nodeclass"
)

// Spread picks n of the file's nodes so that every class is represented in
// proportion to its count whatever n is: node i of a class of c nodes
// comes at (i+0.5)/c of the way through the order, ties broken by the
// classes' order in the file. n equal to the file's total is every node.
// The choice depends only on the file and n, so two runs agree.
func Spread(f *nodeclass.File, n int) ([]nodeclass.Node, error) {
	all := f.Nodes()
	if n < 1 || n > len(all) {
		return nil, fmt.Errorf("%d virtual nodes asked for, but the node-class file describes %d: ask for 1 to %d, or raise the classes' counts", n, len(all), len(all))
	}
	type keyed struct {
		pos   float64
		class int
		node  nodeclass.Node
	}
	ks := make([]keyed, 0, len(all))
	k := 0
	for ci, c := range f.Classes {
		for i := 0; i < c.Count; i++ {
			ks = append(ks, keyed{(float64(i) + 0.5) / float64(c.Count), ci, all[k]})
			k++
		}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.class, b.class))
	})
	out := make([]nodeclass.Node, n)
	for i := range out {
		out[i] = ks[i].node
	}
	return out, nil
}
