package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

func TestParseJobIDs(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint64
		wantErr string
	}{
		{"42", []uint64{42}, ""},
		{"42,43, 7", []uint64{42, 43, 7}, ""},
		{"40-43", []uint64{40, 41, 42, 43}, ""},
		{"1,5-6", []uint64{1, 5, 6}, ""},
		{"", nil, "at least one job id"},
		{"x", nil, `invalid job id "x"`},
		{"0", nil, `invalid job id "0"`},
		{"9-3", nil, `invalid job id "9-3"`},
		{"42_3", nil, `invalid job id "42_3"`},
		{"1-1000", nil, ""},
		{"1-1001", nil, "more than 1000 jobs"},
		{"1-999,2000,3000", nil, "more than 1000 jobs"},
	}
	for _, tc := range tests {
		got, err := parseJobIDs("history", tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: %v, want an error saying %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestHistoryStateTakesSacctNames(t *testing.T) {
	for in, want := range map[string]api.JobState{
		"cd": api.StateCompleted, "F": api.StateFailed, "to": api.StateTimeout, "OOM": api.StateOutOfMemory,
		"ca": api.StateCancelled, "canceled": api.StateCancelled, "NF": api.StateNodeFail,
		"completed": api.StateCompleted, " node_fail ": api.StateNodeFail, "R": "R",
	} {
		if got := historyState(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

// A job's history line from its whole record sums its runs, as the
// archive's summary does.
func TestJobHistoryRow(t *testing.T) {
	exit := 3
	j := api.Job{ID: 7, User: "u", Account: "a", State: api.StateFailed, ExitCode: &exit, Runs: []api.Run{
		{CPUs: 2, Usage: api.Usage{ElapsedSeconds: 10, CPUSeconds: 15, PeakMemory: 100, GPUSeconds: 20}},
		{CPUs: 4, Usage: api.Usage{ElapsedSeconds: 5, CPUSeconds: 1, PeakMemory: 300}},
	}}
	r := jobHistoryRow(j)
	if r.ID != 7 || r.Runs != 2 || r.ElapsedSeconds != 15 || r.CPUSeconds != 16 || r.PeakMemory != 300 || r.GPUSeconds != 20 ||
		r.AllocCPUSecs != 40 || *r.ExitCode != 3 || !r.EndTime.IsZero() {
		t.Errorf("row %+v", r)
	}
}

func TestFilterPriority(t *testing.T) {
	rep := api.PriorityReport{
		Jobs:     []api.JobPriority{{ID: 1, User: "ann", Account: "bio"}, {ID: 2, User: "bob", Account: "phys"}, {ID: 3, User: "ann", Account: "phys"}},
		Accounts: []api.AccountShare{{Account: "bio"}, {Account: "phys"}},
	}
	tests := []struct {
		user, account     string
		wantJobs, wantAcc string
	}{
		{"", "", "[1 2 3]", "[bio phys]"},
		{"ann", "", "[1 3]", "[bio phys]"},
		{"", "phys", "[2 3]", "[phys]"},
		{"bob", "bio", "[]", "[bio]"}, // the account asked for is still shown
		{"carl", "", "[]", "[]"},
	}
	for _, tc := range tests {
		got := filterPriority(rep, tc.user, tc.account)
		var ids []uint64
		for _, j := range got.Jobs {
			ids = append(ids, j.ID)
		}
		var accs []string
		for _, a := range got.Accounts {
			accs = append(accs, a.Account)
		}
		if fmt.Sprint(ids) != tc.wantJobs || fmt.Sprint(accs) != tc.wantAcc {
			t.Errorf("user %q account %q: jobs %v accounts %v, want %s %s", tc.user, tc.account, ids, accs, tc.wantJobs, tc.wantAcc)
		}
	}
	if len(rep.Jobs) != 3 {
		t.Errorf("filtering changed the report it was given: %+v", rep.Jobs)
	}
}
