package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"time"

	"github.com/hpc-sched/hpc/api"
)

// TestBriefListMatchesFullList: the brief view lists the same jobs, in
// the same order, with the same values in every field it has as the full
// list (a running job, an array waiting behind it, a finished one).
func TestBriefListMatchesFullList(t *testing.T) {
	h := newHarness(t, testConfig())
	h.submit(jobSrc("  resources { cpus = 8 }"))                        // takes the whole node
	h.submit(jobSrc("  resources { cpus = 8 }\n  array { count = 3 }")) // waits: Resources
	h.schedule()
	for _, query := range []string{"/v1/jobs", "/v1/jobs?state=PENDING"} {
		code, full := h.as(0, http.MethodGet, query, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", query, code, full)
		}
		sep := "?"
		if len(query) > len("/v1/jobs") {
			sep = "&"
		}
		code, brief := h.as(0, http.MethodGet, query+sep+"view=brief", nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s brief: %d %s", query, code, brief)
		}
		var fj []api.Job
		var list api.JobList
		if err := json.Unmarshal(full, &fj); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(brief, &list); err != nil {
			t.Fatal(err)
		}
		bj, err := api.ParseBriefTSV(list.TSV)
		if err != nil {
			t.Fatal(err)
		}
		if len(fj) == 0 || len(fj) != len(bj) {
			t.Fatalf("%s: %d jobs in full, %d in brief", query, len(fj), len(bj))
		}
		for i := range fj {
			if want, got := fj[i], bj[i].Job(); !reflect.DeepEqual(got, briefOf(want)) {
				t.Errorf("%s job %d:\nbrief %+v\nfull  %+v", query, i, got, briefOf(want))
			}
		}
		if len(brief)*2 > len(full) {
			t.Errorf("%s: brief list is %d bytes, full %d: not much smaller", query, len(brief), len(full))
		}
	}
	if code, body := h.as(0, http.MethodGet, "/v1/jobs?state=COMPLETED&view=brief", nil); code != http.StatusOK ||
		string(body) != `{"tsv":"`+strings.ReplaceAll(api.BriefColumns, "\t", `\t`)+`\n"}`+"\n" {
		t.Errorf("an empty brief list = %d %s, want 200 and the header line only", code, body)
	}
}

// briefOf keeps the fields of j that JobBrief has (no nodes: nil; times
// local, as a brief line's Unix nanoseconds read back).
func briefOf(j api.Job) api.Job {
	if len(j.Nodes) == 0 {
		j.Nodes = nil
	}
	for _, p := range []**time.Time{&j.StartTime, &j.EndTime, &j.ReservedStart} {
		if *p != nil {
			u := (*p).Local()
			*p = &u
		}
	}
	return api.JobBrief{ID: j.ID, Name: j.Name, User: j.User, State: j.State, Reason: j.Reason, ArrayJobID: j.ArrayJobID,
		ArrayIndex: j.ArrayIndex, NodesWanted: j.NodesWanted, Nodes: j.Nodes, StartTime: j.StartTime, EndTime: j.EndTime,
		ReservedStart: j.ReservedStart}.Job()
}
