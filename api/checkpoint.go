package api

// CheckpointRequest asks a node's agent to checkpoint a job's part now.
type CheckpointRequest struct {
	Mode   string `json:"mode"`             // "signal" or "criu"
	Signal string `json:"signal,omitempty"` // signal mode: the signal to send, e.g. "SIGUSR1"
	Dir    string `json:"dir"`              // the job's checkpoint directory
	// Stop: the job is being stopped (walltime, preemption, drain). In
	// criu mode the dump then ends the job; in signal mode the job is
	// expected to save and exit.
	Stop   bool   `json:"stop,omitempty"`
	Reason string `json:"reason,omitempty"`
}
