package main

import (
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// countJobs is the fake server's view=counts: the server's filters.
func countJobs(jobs []api.Job, user, state string) map[api.JobState]int {
	states := map[api.JobState]bool{}
	for _, s := range strings.Split(state, ",") {
		if s != "" {
			states[api.JobState(s)] = true
		}
	}
	out := map[api.JobState]int{}
	for _, j := range jobs {
		if (user == "" || j.User == user) && (len(states) == 0 || states[j.State]) {
			out[j.State]++
		}
	}
	return out
}

func TestQueueCount(t *testing.T) {
	f := newFakeServer(t)
	f.add(sampleJobs()...)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"live jobs by default", nil, "STATE    JOBS\nPENDING  2\nHELD     1\nRUNNING  2\n"},
		{"all", []string{"--all"}, "STATE      JOBS\nPENDING    2\nHELD       1\nRUNNING    2\nCOMPLETED  1\n"},
		{"one user", []string{"--user", "alice", "--state", "running,held"}, "STATE    JOBS\nHELD     1\nRUNNING  1\n"},
		{"none", []string{"--user", "nobody"}, "STATE  JOBS\n"},
		{"json", []string{"--json", "--state", "PENDING"}, "{\n  \"PENDING\": 2\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr, "queue", "--count"}, tt.args...)...)
			if r.code != 0 || r.stdout != tt.want {
				t.Errorf("exit %d, stdout\n%s\nwant\n%s(stderr %q)", r.code, r.stdout, tt.want, r.stderr)
			}
		})
	}
}
