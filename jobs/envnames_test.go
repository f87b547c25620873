package jobs

import "testing"

func TestReservedEnv(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"HPC_JOB_ID", true},
		{"HPC_", true},
		{"HPC_VIRTUAL", true}, // the prefix is HPC_VIRTUAL_, underscore included
		{"HPC_VIRTUAL_RUNTIME", false},
		{"HPC_VIRTUAL_EXIT", false},
		{"PATH", false},
		{"hpc_job_id", false},
	}
	for _, tt := range tests {
		if got := ReservedEnv(tt.key); got != tt.want {
			t.Errorf("ReservedEnv(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}
