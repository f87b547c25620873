package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// sampleJobs is a queue with one job in each interesting situation.
func sampleJobs() []api.Job {
	at := func(h, m int) time.Time { return time.Date(2025, 3, 4, h, m, 0, 0, time.UTC) }
	return []api.Job{
		{ID: 3, Name: "train", User: "alice", Account: "ml", State: api.StateRunning, NodesWanted: 2,
			Nodes: []string{"gpu01", "gpu02"}, GPUs: map[string][]int{"gpu02": {2, 3}, "gpu01": {0, 1}},
			SubmitTime: at(9, 0), StartTime: timep(at(10, 30))},
		{ID: 1, Name: "big", User: "bob", State: api.StatePending, NodesWanted: 4, Reason: "Resources",
			SubmitTime: at(8, 0), ReservedStart: timep(at(12, 30))},
		{ID: 2, Name: "later", User: "bob", State: api.StatePending, NodesWanted: 1, Reason: "Priority",
			SubmitTime: at(8, 5), ReservedStart: timep(time.Date(2025, 3, 5, 7, 15, 0, 0, time.UTC))},
		{ID: 4, Name: "held", User: "alice", State: api.StateHeld, NodesWanted: 1, Reason: "held by user", SubmitTime: at(9, 0)},
		{ID: 5, Name: "done", User: "alice", State: api.StateCompleted, ExitCode: intp(0), Nodes: []string{"cpu01"},
			SubmitTime: at(7, 0), StartTime: timep(at(7, 0)), EndTime: timep(at(7, 1).Add(5 * time.Second))},
		{ID: 6, Name: "sweep", User: "carol", State: api.StateRunning, Nodes: []string{"cpu01"}, ArrayJobID: 6, ArrayIndex: intp(0),
			SubmitTime: at(11, 0), StartTime: timep(time.Date(2025, 3, 2, 11, 0, 0, 0, time.UTC))},
	}
}

func TestQueue(t *testing.T) {
	f := newFakeServer(t)
	f.add(sampleJobs()...)
	// An array: one element running, pending ones fold by reason.
	elem := func(id uint64, idx int, state api.JobState, reason string) api.Job {
		return api.Job{ID: id, Name: "sweep", User: "carol", State: state, Reason: reason, NodesWanted: 1,
			ArrayJobID: 7, ArrayIndex: intp(idx), SubmitTime: testNow}
	}
	running := elem(7, 1, api.StateRunning, "")
	running.Nodes, running.StartTime = []string{"cpu01"}, timep(testNow)
	f.add(running, elem(8, 2, api.StatePending, "ArrayTaskLimit"), elem(9, 3, api.StatePending, "ArrayTaskLimit"),
		elem(10, 4, api.StatePending, "ArrayTaskLimit"), elem(11, 9, api.StatePending, "ArrayTaskLimit"),
		elem(12, 10, api.StatePending, "Resources"))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default hides ended jobs (pending array elements fold)", nil, "" +
			"JOBID      NAME   USER   STATE    TIME        NODES        REASON\n" +
			"1          big    bob    PENDING  0:00        4            Resources (start ~12:30)\n" +
			"2          later  bob    PENDING  0:00        1            Priority (start ~Mar 05 07:15)\n" +
			"3          train  alice  RUNNING  1:30:00     gpu01,gpu02  -\n" +
			"4          held   alice  HELD     0:00        1            held by user\n" +
			"6_0        sweep  carol  RUNNING  2-01:00:00  cpu01        -\n" +
			"7_1        sweep  carol  RUNNING  0:00        cpu01        -\n" +
			"7_[2-4,9]  sweep  carol  PENDING  0:00        1            ArrayTaskLimit\n" +
			"7_10       sweep  carol  PENDING  0:00        1            Resources\n"},
		{"all", []string{"--all", "--user", "alice"}, "" +
			"JOBID  NAME   USER   STATE      TIME     NODES        REASON\n" +
			"3      train  alice  RUNNING    1:30:00  gpu01,gpu02  -\n" +
			"4      held   alice  HELD       0:00     1            held by user\n" +
			"5      done   alice  COMPLETED  1:05     cpu01        -\n"},
		{"state", []string{"--state", "completed"}, "" +
			"JOBID  NAME  USER   STATE      TIME  NODES  REASON\n" +
			"5      done  alice  COMPLETED  1:05  cpu01  -\n"},
		{"states", []string{"--state", "held,Pending"}, "" +
			"JOBID      NAME   USER   STATE    TIME  NODES  REASON\n" +
			"1          big    bob    PENDING  0:00  4      Resources (start ~12:30)\n" +
			"2          later  bob    PENDING  0:00  1      Priority (start ~Mar 05 07:15)\n" +
			"4          held   alice  HELD     0:00  1      held by user\n" +
			"7_[2-4,9]  sweep  carol  PENDING  0:00  1      ArrayTaskLimit\n" +
			"7_10       sweep  carol  PENDING  0:00  1      Resources\n"},
		{"empty", []string{"--user", "nobody"}, "JOBID  NAME  USER  STATE  TIME  NODES  REASON\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr, "queue"}, tt.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if r.stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.want)
			}
		})
	}
}

func TestQueueJSON(t *testing.T) {
	f := newFakeServer(t)
	f.add(sampleJobs()...)
	r := hpcsub("--addr", f.addr, "queue", "--json", "--state", "HELD")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	equalJSON(t, r.stdout, []api.Job{sampleJobs()[3]})
	r = hpcsub("--addr", f.addr, "queue", "--json", "--user", "nobody")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty queue JSON = %q, want []", r.stdout)
	}
}

func TestShow(t *testing.T) {
	f := newFakeServer(t)
	j := sampleJobs()[0]
	j.UID = 1001
	j.Priority = 100
	j.CPUs = 16
	j.Memory = 64 << 30
	j.GPUsPerNode = 2
	j.Walltime = "4h"
	j.Workdir = "/scratch/alice"
	j.Output = "/scratch/alice/hpc-3.out"
	j.Error = "/scratch/alice/hpc-3.err"
	j.Usage = &api.Usage{ElapsedSeconds: 5400, CPUSeconds: 3600 * 20, PeakMemory: 3 << 29, GPUSeconds: 21600}
	j.History = []api.Transition{
		{Time: j.SubmitTime, State: api.StatePending, Reason: "submitted"},
		{Time: *j.StartTime, State: api.StateRunning},
	}
	f.add(j)

	r := hpcsub("--addr", f.addr, "show", "3")
	want := "" +
		"id:         3\n" +
		"name:       train\n" +
		"user:       alice (uid 1001)\n" +
		"account:    ml\n" +
		"priority:   100\n" +
		"state:      RUNNING\n" +
		"reason:     -\n" +
		"exit code:  -\n" +
		"nodes:      gpu01,gpu02 (2 wanted)\n" +
		"gpus:       2 per node; allocated gpu01:0,1 gpu02:2,3\n" +
		"cpus:       16 per node\n" +
		"memory:     64GiB per node\n" +
		"walltime:   4h\n" +
		"submitted:  2025-03-04 09:00:00\n" +
		"started:    2025-03-04 10:30:00\n" +
		"ended:      -\n" +
		"elapsed:    1:30:00\n" +
		"restarts:   0\n" +
		"workdir:    /scratch/alice\n" +
		"output:     /scratch/alice/hpc-3.out\n" +
		"error:      /scratch/alice/hpc-3.err\n" +
		"usage:      elapsed 1:30:00, cpu 20:00:00, peak memory 1.5GiB, gpu 6:00:00\n" +
		"history:    \n" +
		"            2025-03-04 09:00:00  PENDING  submitted\n" +
		"            2025-03-04 10:30:00  RUNNING\n"
	if r.code != 0 || r.stderr != "" || r.stdout != want {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}

	r = hpcsub("--addr", f.addr, "show", "--json", "3")
	if r.code != 0 {
		t.Fatalf("show --json: exit %d, stderr %q", r.code, r.stderr)
	}
	equalJSON(t, r.stdout, j)
	// These keys are a contract with scripts.
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "state", "exit_code", "nodes", "gpus"} {
		if _, ok := m[k]; !ok {
			t.Errorf("show --json lacks key %q", k)
		}
	}

	r = hpcsub("--addr", f.addr, "show", "99")
	r.checkOneLine(t, 1, "hpcsub: job 99: no job 99 (see `hpcsub queue --all`)")
}

func TestJobActions(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderr     string
		finalState map[uint64]api.JobState
	}{
		{[]string{"cancel", "3", "1"}, 0, "job 3 CANCELLED\njob 1 CANCELLED\n", "",
			map[uint64]api.JobState{3: api.StateCancelled, 1: api.StateCancelled}},
		{[]string{"cancel", "3", "99", "1"}, 1, "job 3 CANCELLED\njob 1 CANCELLED\n",
			"hpcsub: cancel 99: no job 99 (see `hpcsub queue --all`)\n", nil},
		{[]string{"hold", "1", "3"}, 1, "job 1 HELD\n",
			"hpcsub: hold 3: job is RUNNING, only PENDING jobs can be held\n", map[uint64]api.JobState{1: api.StateHeld, 3: api.StateRunning}},
		{[]string{"release", "4"}, 0, "job 4 PENDING\n", "", map[uint64]api.JobState{4: api.StatePending}},
		{[]string{"cancel", "10"}, 0, "job 10 RUNNING (cancel requested)\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeServer(t)
			f.add(sampleJobs()...)
			f.add(api.Job{ID: 10, Name: "slow-to-die", State: api.StateRunning})
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
			for id, st := range tt.finalState {
				if got := f.jobs[id].State; got != st {
					t.Errorf("job %d is %s, want %s", id, got, st)
				}
			}
		})
	}
}

func TestLogs(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	writeFile(t, dir, "hpc-5.out", "hello\nworld\n")
	writeFile(t, dir, "hpc-5.err", "warning\n")
	f.add(
		api.Job{ID: 5, State: api.StateCompleted, Workdir: dir, Output: "hpc-5.out", Error: filepath.Join(dir, "hpc-5.err")},
		api.Job{ID: 6, State: api.StatePending, Workdir: dir, Output: filepath.Join(dir, "hpc-6.out")},
	)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"logs", "5"}, 0, "hello\nworld\n", ""},
		{[]string{"logs", "-f", "5"}, 0, "hello\nworld\n", ""},
		{[]string{"logs", "5", "--error"}, 0, "warning\n", ""},
		{[]string{"logs", "6"}, 1, "", "hpcsub: job 6 (PENDING) has no output yet: " + filepath.Join(dir, "hpc-6.out") + " does not exist\n"},
		{[]string{"logs", "6", "-e"}, 1, "", "hpcsub: job 6 has no file recorded for this stream\n"},
		{[]string{"logs", "99"}, 1, "", "hpcsub: job 99: no job 99 (see `hpcsub queue --all`)\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			if r.code != tt.code || r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestCopyFromOffset(t *testing.T) {
	p := writeFile(t, t.TempDir(), "out", "abcdef")
	var b strings.Builder
	n, err := copyFrom(&b, p, 2, 0)
	if err != nil || n != 4 || b.String() != "cdef" {
		t.Errorf("copyFrom = %d, %v, %q", n, err, b.String())
	}
	if n, err := copyFrom(&b, p+".missing", 0, 0); n != 0 || err != nil {
		t.Errorf("missing file: %d, %v; want 0, nil", n, err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}
