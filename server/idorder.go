package server

// sortByID orders jobs by id. Job ids are dense — a queue of 100,000
// pending jobs spans not many more ids than that — so when the span is at
// most a few times the count, each job is put at its id's offset in one
// pass and the gaps squeezed out: linear, where a comparison sort of
// 100,000 jobs under the server's lock was a third of a scheduling pass.
// Sparse ids fall back to sorting.
func sortByID(js []*job) {
	if len(js) < 64 {
		sortJobs(js)
		return
	}
	lo, hi := js[0].ID, js[0].ID
	for _, j := range js {
		lo, hi = min(lo, j.ID), max(hi, j.ID)
	}
	span := hi - lo + 1
	if span > uint64(4*len(js)) {
		sortJobs(js)
		return
	}
	slots := make([]*job, span)
	for _, j := range js {
		if slots[j.ID-lo] != nil {
			// The same id twice (never from a map of jobs): keep the
			// comparison sort's answer, duplicates and all.
			sortJobs(js)
			return
		}
		slots[j.ID-lo] = j
	}
	k := 0
	for _, j := range slots {
		if j != nil {
			js[k] = j
			k++
		}
	}
}
