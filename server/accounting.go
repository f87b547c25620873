package server

import (
	"time"

	"github.com/hpc-sched/hpc/api"
)

// startRun begins the accounting record of the run that just ended, from
// what the job held while it ran; endRun completes it once the job's next
// state is known (a requeue clears the allocation, so this comes first).
// usage is the run's own, GPU-seconds included.
func (j *job) startRun(o api.Outcome, usage api.Usage) api.Run {
	r := api.Run{
		Index: j.Restarts,
		Nodes: j.nodeNames(),
		Start: o.Start,
		End:   o.End,
		Usage: usage,
	}
	r.GPUUsage = o.GPUUsage // what the nodes measured through NVML, if anything
	if r.Start.IsZero() && j.Start != nil {
		r.Start = *j.Start
	}
	for _, a := range j.Alloc {
		r.CPUs += len(a.CPUs)
		r.Memory += a.Memory
		if len(a.GPUs) > 0 {
			if r.GPUs == nil {
				r.GPUs = map[string][]int{}
			}
			r.GPUs[a.Node] = a.GPUs
		}
	}
	if o.ExitCode != 0 || o.State != api.StateNodeFail {
		code := o.ExitCode
		r.ExitCode = &code
	}
	r.Signal = o.Signal
	return r
}

// endRun stores run r with how it ended: the job's terminal state, or
// REQUEUED when the job went back to the queue. The job's usage becomes
// the sum over all its runs. A launch cut short before any of the job's
// code ran (neverStarted) is no run and leaves no record.
func (j *job) endRun(r api.Run, neverStarted bool) {
	if neverStarted {
		return
	}
	if api.Terminal(j.State) {
		r.State, r.Cause = j.State, j.Reason
	} else {
		r.State, r.Cause = api.StateRequeued, "requeued"
		for i := len(j.History) - 1; i >= 0; i-- {
			if t := j.History[i]; t.State == api.StateRequeued {
				r.Cause = t.Reason
				break
			}
		}
	}
	j.Runs = append(j.Runs, r)
	u := api.TotalUsage(j.Runs)
	j.Usage = &u
}

// lostRun records the run of a job whose processes vanished with their
// node: no outcome, so no usage beyond the time it held the node.
func (j *job) lostRun(now time.Time) api.Run {
	r := j.startRun(api.Outcome{State: api.StateNodeFail, End: now}, api.Usage{})
	if !r.Start.IsZero() {
		r.Usage.ElapsedSeconds = now.Sub(r.Start).Seconds()
		r.Usage.GPUSeconds = j.gpuSeconds(r.Usage.ElapsedSeconds)
	}
	return r
}

// gpuSeconds is what a run of elapsed seconds is charged in GPU-seconds:
// the GPUs it held on every node, a shared GPU at the job's share of it
// (four jobs sharing one GPU for an hour use one GPU-hour between them).
func (j *job) gpuSeconds(elapsed float64) float64 {
	gpus := float64(j.GPUCount * len(j.Alloc))
	if j.GPUShare > 0 && j.GPUShare < 1 {
		gpus *= j.GPUShare
	}
	return gpus * elapsed
}
