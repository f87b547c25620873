package sim

import (
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

func BenchmarkZZWhole(b *testing.B) {
	tr, err := ReadSWFFile(sharedTraceB(b, "lublin_256.swf"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := SimulateSWF(tr, SWFOptions{Policy: placement.Policy{Backfill: placement.Conservative}}); err != nil {
			b.Fatal(err)
		}
	}
}
