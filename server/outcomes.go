package server

import (
	"sync"

	"github.com/hpc-sched/hpc/api"
)

// maxOutcomesAtOnce bounds the outcomes of one sync taken at once (a sync
// may carry thousands, from an agent that was cut off for a while).
const maxOutcomesAtOnce = 256

// agentOutcomes takes the outcomes of one sync side by side, so that
// their commits share one group commit (store/group.go) instead of each
// waiting for the fsync of the one before. Outcomes of different jobs are
// independent; two of the same job serialise on its write slot, and the
// later finds it ended.
func (s *Server) agentOutcomes(sess *agentSession, outs []api.Outcome) {
	if len(outs) == 1 {
		s.agentOutcome(sess, outs[0])
		return
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxOutcomesAtOnce)
	for _, o := range outs {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			s.agentOutcome(sess, o)
		}()
	}
	wg.Wait()
}
