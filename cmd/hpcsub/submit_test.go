package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

const okJob = `variable "n" { default = "1" }

job "hello" {
  walltime = "1m"
  task {
    command = "echo"
    args    = ["hello", "${var.n}"]
  }
}
`

// badJob has two mistakes, so both diagnostics must be shown.
const badJob = `job "broken" {
  walltime = "-1h"
  task { command = "true" }
  bogus = 1
}
`

func TestSubmit(t *testing.T) {
	f := newFakeServer(t)
	f.submitIDs = []uint64{42}
	dir := t.TempDir()
	path := writeFile(t, dir, "hello.hcl", okJob)
	t.Setenv("HPCSUB_TEST_MARK", "carried")
	t.Chdir(dir)

	r := hpcsub("--addr", f.addr, "submit", "hello.hcl", "-var", "n=1", "--var", "n=a,b")
	if r.code != 0 || r.stdout != "42\n" || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0, \"42\\n\", nothing", r.code, r.stdout, r.stderr)
	}
	if len(f.submits) != 1 {
		t.Fatalf("%d submits, want 1", len(f.submits))
	}
	req := f.submits[0]
	cwd, _ := os.Getwd()
	if req.Filename != path || !filepath.IsAbs(req.Filename) {
		t.Errorf("Filename = %q, want absolute %q", req.Filename, path)
	}
	if req.Source != okJob {
		t.Errorf("Source = %q, want the file", req.Source)
	}
	if req.Cwd != cwd {
		t.Errorf("Cwd = %q, want %q", req.Cwd, cwd)
	}
	if req.Vars["n"] != "a,b" || len(req.Vars) != 1 {
		t.Errorf("Vars = %v, want n=a,b (the last -var wins; commas are no separator)", req.Vars)
	}
	if req.Env["HPCSUB_TEST_MARK"] != "carried" || req.Env["PATH"] != os.Getenv("PATH") {
		t.Errorf("Env lacks the submitter's environment: mark %q", req.Env["HPCSUB_TEST_MARK"])
	}
}

func TestSubmitArrayPrintsEveryID(t *testing.T) {
	f := newFakeServer(t)
	f.submitIDs = []uint64{7, 8, 9}
	r := hpcsub("--addr", f.addr, "submit", "../../jobs/examples/array.hcl")
	if r.code != 0 || r.stdout != "7\n8\n9\n" || r.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestSubmitBadFileSendsNothing(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.hcl", badJob)
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"hcl errors", []string{"submit", bad}, []string{
			bad + ":2:14: ", `duration "-1h" is negative`, `  2 |   walltime = "-1h"`, "    |              ^^^^^",
			bad + ":4:3: ", `"bogus" is not expected`, "^^^^^",
		}},
		{"undeclared var", []string{"submit", "-var", "nope=1", writeFile(t, dir, "ok.hcl", okJob)}, []string{`no variable "nope"`}},
		{"missing file", []string{"submit", filepath.Join(dir, "missing.hcl")}, []string{"hpcsub: cannot read job file", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
	if len(f.submits) != 0 {
		t.Errorf("%d submits reached the server, want none", len(f.submits))
	}
}

func TestSubmitRefusedByServer(t *testing.T) {
	f := newFakeServer(t)
	f.submitErr = &api.Error{
		Error:       "job can never run: no node has 8 GPUs (largest: 4)",
		Diagnostics: []string{"train.hcl:9:14: Too many GPUs: no node has 8"},
	}
	r := hpcsub("--addr", f.addr, "submit", "../../jobs/examples/hello.hcl")
	want := "hpcsub: job can never run: no node has 8 GPUs (largest: 4)\ntrain.hcl:9:14: Too many GPUs: no node has 8\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", r.code, r.stdout, r.stderr, want)
	}
}

func TestSubmitWaitExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		job      api.Job
		code     int
		stderrIs string
	}{
		{"completed", api.Job{State: api.StateCompleted, ExitCode: intp(0)}, 0, "job 42 COMPLETED\n"},
		{"failed", api.Job{State: api.StateFailed, ExitCode: intp(3)}, 3, "job 42 FAILED: exit code 3\n"},
		{"failed with reason", api.Job{State: api.StateFailed, ExitCode: intp(3), Reason: "exit code 3"}, 3, "job 42 FAILED: exit code 3\n"},
		{"killed by signal", api.Job{State: api.StateFailed, Signal: "SIGSEGV"}, 139, "job 42 FAILED: killed by SIGSEGV\n"},
		{"signal beats -1", api.Job{State: api.StateFailed, ExitCode: intp(-1), Signal: "SIGKILL"}, 137, "job 42 FAILED: killed by SIGKILL\n"},
		{"failed without code", api.Job{State: api.StateFailed, Reason: "command not found"}, 1, "job 42 FAILED: command not found\n"},
		{"exit code over 255", api.Job{State: api.StateFailed, ExitCode: intp(258)}, 2, "job 42 FAILED: exit code 258\n"},
		{"timeout", api.Job{State: api.StateTimeout, Reason: "walltime 1s exceeded", Signal: "SIGKILL"}, 1, "job 42 TIMEOUT: walltime 1s exceeded\n"},
		{"timeout with code", api.Job{State: api.StateTimeout, ExitCode: intp(143), Reason: "walltime 1s exceeded"}, 143, "job 42 TIMEOUT: walltime 1s exceeded\n"},
		{"oom", api.Job{State: api.StateOutOfMemory, Reason: "memory limit 64MiB exceeded"}, 1, "job 42 OUT_OF_MEMORY: memory limit 64MiB exceeded\n"},
		{"oom with code", api.Job{State: api.StateOutOfMemory, ExitCode: intp(137)}, 137, "job 42 OUT_OF_MEMORY: exit code 137\n"},
		{"cancelled", api.Job{State: api.StateCancelled, Reason: "cancelled by alice"}, 1, "job 42 CANCELLED: cancelled by alice\n"},
		{"cancelled zero code", api.Job{State: api.StateCancelled, ExitCode: intp(0)}, 1, "job 42 CANCELLED\n"},
		{"node fail", api.Job{State: api.StateNodeFail, Reason: "node n1 down"}, 1, "job 42 NODE_FAIL: node n1 down\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.submitIDs = []uint64{42}
			j := tt.job
			j.ID = 42
			f.add(j)
			r := hpcsub("--addr", f.addr, "submit", "../../jobs/examples/hello.hcl", "--wait")
			if r.code != tt.code || r.stdout != "42\n" || r.stderr != tt.stderrIs {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, \"42\\n\", %q", r.code, r.stdout, r.stderr, tt.code, tt.stderrIs)
			}
		})
	}
}

func TestSubmitWaitArrayExitsWithFirstFailure(t *testing.T) {
	f := newFakeServer(t)
	f.submitIDs = []uint64{7, 8, 9}
	f.add(api.Job{ID: 7, State: api.StateCompleted, ExitCode: intp(0)},
		api.Job{ID: 8, State: api.StateFailed, ExitCode: intp(4)},
		api.Job{ID: 9, State: api.StateFailed, ExitCode: intp(5)})
	r := hpcsub("--addr", f.addr, "submit", "--wait", "../../jobs/examples/array.hcl")
	wantErr := "job 7 COMPLETED\njob 8 FAILED: exit code 4\njob 9 FAILED: exit code 5\n"
	if r.code != 4 || r.stdout != "7\n8\n9\n" || r.stderr != wantErr {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestValidate(t *testing.T) {
	// No daemon: validate must never need one.
	t.Setenv(api.EnvAddr, "unix:///nonexistent/hpcd.sock")
	examples, err := filepath.Glob("../../jobs/examples/*.hcl")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	// bad.hcl is the README's example of a file with mistakes.
	examples = slices.DeleteFunc(examples, func(p string) bool { return filepath.Base(p) == "bad.hcl" })
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.hcl", badJob)
	unclosed := writeFile(t, dir, "unclosed.hcl", "job \"x\" {\n  walltime = \"1m\"\n")
	ok := writeFile(t, dir, "ok.hcl", okJob)

	okLines := func(files ...string) string {
		var b strings.Builder
		for _, f := range files {
			b.WriteString(f + ": ok\n")
		}
		return b.String()
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHas  []string
		stderrNone bool
	}{
		{"examples", append([]string{"validate"}, examples...), 0, okLines(examples...), nil, true},
		{"with var", []string{"validate", "-var", "n=5", ok}, 0, okLines(ok), nil, true},
		{"bad", []string{"validate", bad}, 1, "", []string{bad + ":2:14:", bad + ":4:3:", "^^^^^"}, false},
		{"unclosed", []string{"validate", unclosed}, 1, "", []string{unclosed + ":"}, false},
		{"mixed", []string{"validate", ok, bad, ok}, 1, okLines(ok, ok), []string{bad + ":2:14:"}, false},
		{"missing", []string{"validate", filepath.Join(dir, "nope.hcl")}, 1, "", []string{"no such file"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hpcsub(tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q (stderr %q)", r.code, r.stdout, tt.code, tt.stdout, r.stderr)
			}
			if tt.stderrNone && r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
			for _, w := range tt.stderrHas {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}
