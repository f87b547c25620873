package api

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBriefTSVRoundTrip(t *testing.T) {
	idx := 7
	start := time.Unix(1700000000, 123456789)
	end := start.Add(time.Minute)
	rows := []JobBrief{
		{ID: 1, Name: "a", User: "alice", State: StatePending, Reason: "Resources", NodesWanted: 1},
		{ID: 2, ArrayJobID: 2, ArrayIndex: &idx, Name: "sweep", User: "bob", State: StateRunning, NodesWanted: 2,
			Nodes: []string{"n1", "n2"}, StartTime: &start},
		{ID: 3, Name: "x", User: "c", State: StateCompleted, Reason: "tab\there\nand line", NodesWanted: 1,
			Nodes: []string{"n3"}, StartTime: &start, EndTime: &end},
		{ID: 4, Name: "r", User: "d", State: StatePending, Reason: "Resources", NodesWanted: 1, ReservedStart: &end},
	}
	b := []byte(BriefColumns + "\n")
	for _, r := range rows {
		b = r.AppendTSV(b)
	}
	got, err := ParseBriefTSV(string(b))
	if err != nil {
		t.Fatal(err)
	}
	rows[2].Reason = "tab here and line" // what a line can carry
	for i := range rows {
		for _, p := range []**time.Time{&got[i].StartTime, &got[i].EndTime, &got[i].ReservedStart} {
			if *p != nil {
				u := (*p).UTC()
				*p = &u
			}
		}
		for _, p := range []**time.Time{&rows[i].StartTime, &rows[i].EndTime, &rows[i].ReservedStart} {
			if *p != nil {
				u := (*p).UTC()
				*p = &u
			}
		}
	}
	if !reflect.DeepEqual(got, rows) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rows)
	}
}

func TestParseBriefTSVErrors(t *testing.T) {
	good := BriefColumns + "\n1\t\t\tn\tu\tPENDING\t\t1\t\t\t\t\n"
	if _, err := ParseBriefTSV(good); err != nil {
		t.Fatalf("good list: %v", err)
	}
	tests := []struct{ name, tsv, want string }{
		{"no header", "1\t\t\tn\tu\tPENDING\t\t1\t\t\t\t\n", "columns"},
		{"too few fields", BriefColumns + "\n1\t\t\tn\n", "has 4 fields"},
		{"too many fields", BriefColumns + "\n1\t\t\tn\tu\tPENDING\t\t1\t\t\t\t\t\n", "has 13 fields"},
		{"bad id", BriefColumns + "\nx\t\t\tn\tu\tPENDING\t\t1\t\t\t\t\n", "invalid syntax"},
		{"bad time", BriefColumns + "\n1\t\t\tn\tu\tPENDING\t\t1\t\tsoon\t\t\n", "invalid syntax"},
	}
	for _, tt := range tests {
		if _, err := ParseBriefTSV(tt.tsv); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}
