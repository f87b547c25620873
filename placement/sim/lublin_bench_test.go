package sim

import (
	"fmt"
	"testing"

	"github.com/hpc-sched/hpc/placement"
)

// BenchmarkLublin replays windows of the shipped lublin_256 trace through
// Plan, the workload the 10 s per policy aim is about. Profile
// with: go test -run XXX -bench Lublin -benchtime 1x -cpuprofile cpu.out
func BenchmarkLublin(b *testing.B) {
	tr, err := ReadSWFFile(sharedTrace(b, "lublin_256.swf"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		pol  placement.Backfill
		jobs int
	}{{placement.EASY, 2048}, {placement.Conservative, 1024}} {
		b.Run(fmt.Sprintf("%s/jobs=%d", c.pol, c.jobs), func(b *testing.B) {
			for b.Loop() {
				if _, err := SimulateSWF(tr, SWFOptions{Jobs: c.jobs, Policy: policyOf(c.pol)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
