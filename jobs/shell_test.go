package jobs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestShellPassThrough: in script, shell ${...} and %{...} reach the shell
// as written, ${var.x} is still HCL, and $${ is still an escape.
func TestShellPassThrough(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
	}{
		{"braced", `echo "${HOME}"`, `echo "${HOME}"`},
		{"plain", `echo $HOME $$ $1`, `echo $HOME $$ $1`},
		{"default", `echo ${OUT:-/tmp}/x ${#a[@]} ${f%.*} %{x}`, `echo ${OUT:-/tmp}/x ${#a[@]} ${f%.*} %{x}`},
		{"var", `echo ${var.who} ${ var.who }`, `echo alice alice`},
		{"escaped", `echo $${HOME} %%{x}`, `echo ${HOME} %{x}`},
	} {
		t.Run(tc.name+"/heredoc", func(t *testing.T) {
			src := "variable \"who\" { default = \"alice\" }\njob \"j\" {\n  task {\n    script = <<-EOT\n      " + tc.script + "\n      echo '#' ${X} # ${Y}\n    EOT\n  }\n}\n"
			s, err := Parse("j.hcl", []byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want + "\necho '#' ${X} # ${Y}\n"
			if s.Task.Script != want {
				t.Errorf("script = %q, want %q", s.Task.Script, want)
			}
		})
		t.Run(tc.name+"/quoted", func(t *testing.T) {
			src := "variable \"who\" { default = \"alice\" }\njob \"j\" {\n  task { script = \"" + strings.ReplaceAll(tc.script, `"`, `\"`) + "\" }\n}\n"
			s, err := Parse("j.hcl", []byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Task.Script != tc.want {
				t.Errorf("script = %q, want %q", s.Task.Script, tc.want)
			}
		})
	}
}

// TestShellRuleDiagnostics: outside script ${HOME} is HCL, and the error
// says how to write it; positions after a passed-through ${ are those of
// the file as written.
func TestShellRuleDiagnostics(t *testing.T) {
	src := "job \"j\" {\n  task {\n    command = \"/bin/echo\"\n    args = [\"${HOME}\"]\n  }\n}\n"
	_, err := Parse("j.hcl", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "j.hcl:4:") || !strings.Contains(err.Error(), "write $${HOME}") {
		t.Fatalf("got %v, want a hint at line 4 naming $${HOME}", err)
	}
	src = "job \"j\" {\n  task {\n    script = \"echo ${HOME} ${var.nope}\"\n  }\n}\n"
	_, err = Parse("j.hcl", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "j.hcl:3:33:") {
		t.Fatalf("got %v, want the error at 3:33 (the column of .nope as written)", err)
	}
	if pretty := err.(*Error).Pretty(); strings.Contains(pretty, "$${HOME}") {
		t.Errorf("snippet shows the rewritten source:\n%s", pretty)
	}
}

func TestJobNameVariable(t *testing.T) {
	src := "variable \"dataset\" { default = \"imagenet\" }\njob \"sweep-${var.dataset}\" {\n  task { command = \"/bin/true\" }\n}\n"
	s, err := Parse("j.hcl", []byte(src), map[string]string{"dataset": "cifar"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "sweep-cifar" {
		t.Errorf("name = %q", s.Name)
	}
	bad := "job \"sweep-${var.nope}\" {\n  task { command = \"/bin/true\" }\n}\n"
	if _, err := Parse("j.hcl", []byte(bad), nil); err == nil || !strings.Contains(err.Error(), "j.hcl:1:") {
		t.Errorf("unknown variable in name: got %v", err)
	}
}

func TestScriptFileAndShebang(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/bash\nset -o pipefail\necho ${HOME}\n"), 0o644)
	job := filepath.Join(dir, "j.hcl")
	os.WriteFile(job, []byte("job \"j\" {\n  task { script_file = \"run.sh\" }\n}\n"), 0o644)
	s, err := ParseFile(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Task.ScriptFile != "run.sh" || !strings.HasPrefix(s.Task.Script, "#!/bin/bash\n") {
		t.Errorf("task = %+v", s.Task)
	}
	for _, tc := range []struct{ name, task, want string }{
		{"missing", `script_file = "nope.sh"`, "nope.sh does not exist"},
		{"both", "script_file = \"run.sh\"\n command = \"x\"", "exactly one of command, script or script_file"},
		{"relative interpreter", `script = "#!bash\necho"`, "absolute interpreter path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "job \"j\" {\n  task {\n " + tc.task + "\n }\n}\n"
			_, err := ParseWith(job, []byte(src), nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	// The server reads only what the client sent.
	_, err = ParseWith(job, []byte("job \"j\" {\n  task { script_file = \"run.sh\" }\n}\n"), nil, Options{
		ReadScript: func(string) ([]byte, error) { return nil, os.ErrNotExist },
	})
	if err == nil {
		t.Error("ReadScript was not used")
	}
}

func TestIndicesAndDependencies(t *testing.T) {
	idx, err := ParseIndices("1-9:2, 4,0")
	if err != nil || !reflect.DeepEqual(idx, []int{0, 1, 3, 4, 5, 7, 9}) {
		t.Errorf("ParseIndices = %v, %v", idx, err)
	}
	for _, bad := range []string{"", "5-1", "1:2", "-1", "1-3:0", "x"} {
		if _, err := ParseIndices(bad); err == nil {
			t.Errorf("ParseIndices(%q) accepted", bad)
		}
	}
	src := `job "j" {
  depends_on    = ["42", "afterany:prep:43_7"]
  cancel_signal = "int"
  task { command = "/bin/true" }
  array {
    indices     = "1-99:2"
    max_running = 5
  }
}
`
	s, err := Parse("j.hcl", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Array.Count != 50 || s.Array.Index(0) != 1 || s.Array.Index(49) != 99 || s.Array.MaxRunning != 5 {
		t.Errorf("array = %+v", s.Array)
	}
	want := []Dependency{{DepAfterOK, "42"}, {DepAfterAny, "prep"}, {DepAfterAny, "43_7"}}
	if s.CancelSignal != "SIGINT" {
		t.Errorf("cancel_signal = %q", s.CancelSignal)
	}
	if !reflect.DeepEqual(s.DependsOn, want) {
		t.Errorf("depends_on = %v, want %v", s.DependsOn, want)
	}
	for _, bad := range []string{`depends_on = ["beforeok:1"]`, `depends_on = ["a b"]`, `cancel_signal = "KILL"`, `cancel_signal = "SIGFOO"`} {
		src := "job \"j\" {\n  " + bad + "\n  task { command = \"/bin/true\" }\n}\n"
		if _, err := Parse("j.hcl", []byte(src), nil); err == nil || !strings.Contains(err.Error(), "j.hcl:2:") {
			t.Errorf("%s: got %v", bad, err)
		}
	}
}

func TestJobRefs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want JobRef
		str  string
	}{
		{"42", JobRef{ID: 42}, "42"},
		{"42_7", JobRef{ID: 42, Indices: []int{7}}, "42_7"},
		{"42_[3-5]", JobRef{ID: 42, Indices: []int{3, 4, 5}}, "42_[3-5]"},
		{"42_[1,3,5-6]", JobRef{ID: 42, Indices: []int{1, 3, 5, 6}}, "42_[1-5:2,6]"},
		{"42_[1,5,7-13:2,20,22]", JobRef{ID: 42, Indices: []int{1, 5, 7, 9, 11, 13, 20, 22}}, "42_[1,5-13:2,20,22]"},
		{"42_[1,2,4]", JobRef{ID: 42, Indices: []int{1, 2, 4}}, "42_[1-2,4]"},
	} {
		got, err := ParseJobRef(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) || got.String() != tc.str {
			t.Errorf("ParseJobRef(%q) = %+v (%q), %v; want %+v", tc.in, got, got.String(), err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "0", "42_", "42_x", "42_[9-3]", "-1", "244-2243"} {
		if _, err := ParseJobRef(bad); err == nil {
			t.Errorf("ParseJobRef(%q) accepted", bad)
		}
	}
}
