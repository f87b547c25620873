package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

func TestMain(m *testing.M) {
	// Times in tables are local; pin the zone so golden output is stable.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// testNow is the fixed clock of every test.
var testNow = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

// fakeServer is an hpcd stand-in: real HTTP on a Unix socket, canned
// answers, and a record of what the CLI sent.
type fakeServer struct {
	addr string

	mu      sync.Mutex
	jobs    map[uint64]api.Job
	nodes   []api.Node
	submits []api.SubmitRequest
	drains  map[string]api.DrainRequest
	// actionReqs records every cancel, hold, release... request.
	actionReqs []api.ActionRequest
	// submitIDs is what a submit answers; submitErr, when set, refuses it.
	submitIDs []uint64
	submitErr *api.Error
	// forbidden nodes answer 403 to drain/resume.
	forbidden map[string]bool
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		jobs:      map[uint64]api.Job{},
		drains:    map[string]api.DrainRequest{},
		forbidden: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.RouteJobs, f.submit)
	mux.HandleFunc("GET "+api.RouteJobs, f.list)
	mux.HandleFunc("GET "+api.RouteJob, f.job(func(j api.Job) (api.Job, bool) { return j, true }))
	mux.HandleFunc("GET "+api.RouteJobWait, f.job(func(j api.Job) (api.Job, bool) { return j, true }))
	mux.HandleFunc("POST "+api.RouteJobCancel, f.job(func(j api.Job) (api.Job, bool) {
		if j.Name != "slow-to-die" { // its kill is still under way when the answer goes
			j.State = api.StateCancelled
		}
		return j, true
	}))
	mux.HandleFunc("POST "+api.RouteJobHold, f.job(func(j api.Job) (api.Job, bool) {
		if j.State != api.StatePending {
			return j, false
		}
		j.State = api.StateHeld
		return j, true
	}))
	mux.HandleFunc("POST "+api.RouteJobRelease, f.job(func(j api.Job) (api.Job, bool) {
		j.State = api.StatePending
		return j, true
	}))
	mux.HandleFunc("POST "+api.RouteJobActions, f.actions)
	mux.HandleFunc("GET "+api.RouteNodes, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		reply(w, 200, f.nodes)
	})
	mux.HandleFunc("POST "+api.RouteNodeDrain, f.node("DRAINING"))
	mux.HandleFunc("POST "+api.RouteNodeResume, f.node("IDLE"))

	sock := filepath.Join(t.TempDir(), "hpcd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(mux)
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	f.addr = "unix://" + sock
	return f
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) add(jobs ...api.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range jobs {
		f.jobs[j.ID] = j
	}
}

func (f *fakeServer) submit(w http.ResponseWriter, r *http.Request) {
	var req api.SubmitRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, 400, api.Error{Error: err.Error()})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits = append(f.submits, req)
	if f.submitErr != nil {
		reply(w, 400, f.submitErr)
		return
	}
	reply(w, 201, api.SubmitResponse{IDs: f.submitIDs})
}

func (f *fakeServer) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Deliberately unfiltered and unordered: the CLI filters and sorts.
	out := []api.Job{}
	for _, j := range f.jobs {
		out = append(out, j)
	}
	if q := r.URL.Query(); q.Get("view") == api.ViewCounts {
		reply(w, 200, api.JobCounts{Counts: countJobs(out, q.Get("user"), q.Get("state"))}) // counts_test.go
		return
	}
	if r.URL.Query().Get("view") == api.ViewBrief {
		tsv := []byte(api.BriefColumns + "\n")
		for _, j := range out {
			tsv = api.JobBrief{ID: j.ID, ArrayJobID: j.ArrayJobID, ArrayIndex: j.ArrayIndex, Name: j.Name, User: j.User,
				State: j.State, Reason: j.Reason, NodesWanted: j.NodesWanted, Nodes: j.Nodes,
				StartTime: j.StartTime, EndTime: j.EndTime, ReservedStart: j.ReservedStart}.AppendTSV(tsv)
		}
		reply(w, 200, api.JobList{TSV: string(tsv)})
		return
	}
	reply(w, 200, out)
}

func (f *fakeServer) job(change func(api.Job) (api.Job, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			reply(w, 400, api.Error{Error: "bad id"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		j, ok := f.jobs[id]
		if !ok {
			reply(w, 404, api.Error{Error: "no job " + r.PathValue("id") + " (see `hpcsub queue --all`)"})
			return
		}
		j, ok = change(j)
		if !ok {
			reply(w, 409, api.Error{Error: "job is " + string(j.State) + ", only PENDING jobs can be held"})
			return
		}
		f.jobs[id] = j
		reply(w, 200, j)
	}
}

// actions answers an action request on plain job ids, as hpcd does.
func (f *fakeServer) actions(w http.ResponseWriter, r *http.Request) {
	var req api.ActionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		reply(w, 400, api.Error{Error: err.Error()})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actionReqs = append(f.actionReqs, req)
	resp := api.ActionResponse{Results: []api.ActionResult{}}
	for _, t := range req.Targets {
		res := api.ActionResult{Target: t}
		id, _ := strconv.ParseUint(t, 10, 64)
		j, ok := f.jobs[id]
		switch {
		case !ok:
			res.Error = "no job " + t + " (see `hpcsub queue --all`)"
		case req.Action == api.ActionCancel:
			if j.Name != "slow-to-die" { // its kill is still under way when the answer goes
				j.State = api.StateCancelled
			}
		case req.Action == api.ActionHold && j.State != api.StatePending:
			res.Error = "job is " + string(j.State) + ", only PENDING jobs can be held"
		case req.Action == api.ActionHold:
			j.State = api.StateHeld
		case req.Action == api.ActionRelease:
			j.State = api.StatePending
		}
		if res.Error == "" {
			f.jobs[id] = j
			res.Jobs = []api.Job{j}
		}
		resp.Results = append(resp.Results, res)
	}
	reply(w, 200, resp)
}

func (f *fakeServer) node(state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.forbidden[name] {
			reply(w, 403, api.Error{Error: "only admins may drain or resume nodes"})
			return
		}
		var req api.DrainRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.drains[name] = req
		reply(w, 200, api.Node{Name: name, State: api.NodeState(state), Reason: req.Reason})
	}
}

// result is one in-process hpcsub run.
type result struct {
	code           int
	stdout, stderr string
}

// hpcsub runs the CLI in-process with the test clock.
func hpcsub(args ...string) result {
	var out, errb bytes.Buffer
	code := runContext(context.Background(), args, &out, &errb, func() time.Time { return testNow })
	return result{code, out.String(), errb.String()}
}

// oneLineStderr fails unless stderr is exactly one line containing want.
func (r result) checkOneLine(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "hpcsub: missing command (see 'hpcsub --help')"},
		{[]string{"frobnicate"}, `hpcsub: unknown command "frobnicate"`},
		{[]string{"--bogus", "queue"}, "hpcsub: flag provided but not defined: -bogus"},
		{[]string{"queue", "--bogus"}, "hpcsub queue: flag provided but not defined: -bogus (see 'hpcsub queue --help')"},
		{[]string{"queue", "extra"}, `hpcsub queue: unexpected argument "extra"`},
		{[]string{"queue", "--state", "sleeping"}, `unknown state "sleeping"`},
		{[]string{"show"}, "hpcsub show: missing job ID"},
		{[]string{"show", "abc"}, `hpcsub show: invalid job id "abc": want 42, 42_7 or 42_[3-9]`},
		{[]string{"show", "1", "2"}, "one job ID at a time"},
		{[]string{"show", "-1"}, "flag provided but not defined: -1"},
		{[]string{"cancel"}, "hpcsub cancel: missing job ID"},
		{[]string{"cancel", "1", "x"}, `hpcsub cancel: invalid job id "x"`},
		{[]string{"hold", "0"}, `hpcsub hold: invalid job id "0"`},
		{[]string{"release", "1.5"}, `hpcsub release: invalid job id "1.5"`},
		{[]string{"submit"}, "hpcsub submit: missing FILE"},
		{[]string{"submit", "--priority", "x", "a.hcl"}, "invalid value \"x\" for flag -priority"},
		{[]string{"submit", "-var", "novalue", "a.hcl"}, `invalid -var "novalue": want NAME=VALUE`},
		{[]string{"submit", "a.hcl", "--wait=maybe"}, "invalid boolean value"},
		{[]string{"validate"}, "hpcsub validate: missing FILE"},
		{[]string{"node"}, "hpcsub node: missing node command: drain, resume or remove"},
		{[]string{"node", "reboot", "n1"}, `unknown node command "reboot"`},
		{[]string{"node", "drain"}, "hpcsub node drain: missing node NAME"},
		{[]string{"node", "drain", "n1"}, "hpcsub node drain: missing --reason TEXT"},
		{[]string{"node", "drain", "n1", "--reason"}, "hpcsub node drain: flag needs an argument: --reason"},
		{[]string{"node", "drain", "--reason"}, "hpcsub node drain: flag needs an argument: -reason"},
		{[]string{"queue", "--addr"}, "hpcsub queue: flag needs an argument: --addr"},
		{[]string{"node", "resume", "n1", "n2"}, "one node NAME at a time"},
		{[]string{"logs"}, "hpcsub logs: missing job ID"},
		{[]string{"history", "--since", "last tuesday"}, `invalid --since "last tuesday"`},
		{[]string{"help", "nope"}, "No help topic for 'nope'"},
		{[]string{"--addr", "ftp://head", "queue"}, `invalid address "ftp://head"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := tt.args
			if len(args) > 0 && args[0] != "--addr" {
				args = append([]string{"--addr", f.addr}, args...)
			}
			r := hpcsub(args...)
			r.checkOneLine(t, 2, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	if len(f.submits) != 0 {
		t.Errorf("a usage error reached the server: %d submits", len(f.submits))
	}
}

func TestNoDaemonExit1(t *testing.T) {
	dir := t.TempDir()
	ok := writeFile(t, dir, "ok.hcl", okJob)
	addr := "unix://" + filepath.Join(dir, "missing.sock")
	want := "hpcsub: no hpcd is running at " + addr + ": start one with `hpcd dev`, or set HPC_ADDR / --addr\n"
	cmds := [][]string{
		{"submit", ok},
		{"submit", "--wait", ok},
		{"queue"},
		{"queue", "--json"},
		{"show", "1"},
		{"cancel", "1", "2"},
		{"hold", "1"},
		{"release", "1"},
		{"nodes"},
		{"node", "drain", "n1", "--reason", "maintenance"},
		{"node", "resume", "n1"},
		{"logs", "1"},
		{"history"},
	}
	for _, viaEnv := range []bool{false, true} {
		for _, args := range cmds {
			name := strings.Join(args, " ")
			if viaEnv {
				name = "HPC_ADDR " + name
			}
			t.Run(name, func(t *testing.T) {
				if viaEnv {
					t.Setenv(api.EnvAddr, addr)
				} else {
					t.Setenv(api.EnvAddr, "unix:///nonexistent/elsewhere.sock")
					args = append([]string{"--addr", addr}, args...)
				}
				r := hpcsub(args...)
				if r.code != 1 || r.stderr != want || r.stdout != "" {
					t.Errorf("got exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", r.code, r.stdout, r.stderr, want)
				}
			})
		}
	}
}

func TestGlobalFlagAfterCommand(t *testing.T) {
	f := newFakeServer(t)
	f.nodes = []api.Node{{Name: "n1", State: "IDLE"}}
	t.Setenv(api.EnvAddr, "unix:///nonexistent/elsewhere.sock")
	for _, args := range [][]string{
		{"nodes", "--addr", f.addr},
		{"nodes", "--addr=" + f.addr},
		{"--addr", f.addr, "nodes"},
	} {
		if r := hpcsub(args...); r.code != 0 || !strings.Contains(r.stdout, "n1") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestPermuteArgs(t *testing.T) {
	app := newApp(&env{})
	tests := []struct{ in, want string }{
		{"submit job.hcl --wait", "submit --wait job.hcl"},
		{"submit job.hcl -var a=1 --var b=2", "submit -var a=1 --var b=2 job.hcl"},
		{"--addr X submit job.hcl --wait", "--addr X submit --wait job.hcl"},
		{"submit job.hcl --addr X", "--addr X submit job.hcl"},
		{"node drain gpu07 --reason swap HBM --requeue", "node drain --reason swap --requeue gpu07 HBM"},
		{"node drain gpu07 --reason=x", "node drain --reason=x gpu07"},
		{"cancel 1 2 -- -3", "cancel 1 2 -- -3"},
		{"queue --json --user", "queue --json --user"},
		{"unknown a --b", "unknown a --b"},
		{"", ""},
	}
	for _, tt := range tests {
		args, err := permuteArgs(app, strings.Fields(tt.in))
		if err != nil {
			t.Errorf("permuteArgs(%q): %v", tt.in, err)
			continue
		}
		got := strings.Join(args, " ")
		if got != tt.want {
			t.Errorf("permuteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"submit", "--help"}, {"help", "queue"}} {
		r := hpcsub(args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(i int) *int { return &i }

func timep(t time.Time) *time.Time { return &t }

func equalJSON(t *testing.T, got string, want any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	b, _ := json.Marshal(want)
	_ = json.Unmarshal(b, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON = %s, want %s", got, b)
	}
}
