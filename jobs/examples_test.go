package jobs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExamples parses every file in examples/ and checks its key fields, so
// that the examples shipped to users always parse and mean what they say.
func TestExamples(t *testing.T) {
	checks := map[string]func(t *testing.T, s *Spec){
		"hello.hcl": func(t *testing.T, s *Spec) {
			want(t, "name", s.Name, "hello")
			want(t, "command", s.Task.Command, "/bin/echo")
			want(t, "args", s.Task.Args, []string{"hello from", "hpc"})
			want(t, "walltime", s.Walltime, time.Minute)
			want(t, "cpus", s.Resources.CPUs, 1)
			want(t, "memory", s.Resources.Memory, int64(1<<30))
		},
		"script.hcl": func(t *testing.T, s *Spec) {
			want(t, "command", s.Task.Command, "")
			want(t, "script starts", s.Task.Script[:13], `echo "$GREETI`)
			want(t, "env", s.Task.Env, map[string]string{"GREETING": "hello"})
			want(t, "memory", s.Resources.Memory, int64(256<<20))
			want(t, "output", s.Output, "%x-%j.out")
		},
		"multinode.hcl": func(t *testing.T, s *Spec) {
			want(t, "nodes", s.Nodes, 2)
			want(t, "walltime", s.Walltime, 10*time.Minute)
			want(t, "cpus", s.Resources.CPUs, 2)
		},
		"train-nvlink.hcl": func(t *testing.T, s *Spec) {
			want(t, "name", s.Name, "train-resnet")
			want(t, "account", s.Account, "ml")
			want(t, "walltime", s.Walltime, 24*time.Hour)
			want(t, "gpu", s.Resources.GPU, GPU{Count: 4, Model: "H100", Memory: 40 << 30, Link: "nvlink"})
			want(t, "args", s.Task.Args, []string{"--nproc_per_node=4", "train.py", "--epochs", "90"})
			want(t, "env", s.Task.Env, map[string]string{"NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": "8"})
			want(t, "checkpoint", *s.Checkpoint, Checkpoint{Mode: "signal", Signal: "SIGUSR1", Warn: 10 * time.Minute, Interval: time.Hour, MaxRestarts: 5})
			want(t, "requeue", s.Requeue, true)
		},
		"long.hcl": func(t *testing.T, s *Spec) {
			want(t, "cpus", s.Resources.CPUs, 2)
			want(t, "argv", s.Task.Args, []string{"600"})
		},
		"script-file.hcl": func(t *testing.T, s *Spec) {
			want(t, "script_file", s.Task.ScriptFile, "run.sh")
			want(t, "shebang", strings.SplitN(s.Task.Script, "\n", 2)[0], "#!/bin/bash")
		},
		"pipeline.hcl": func(t *testing.T, s *Spec) {
			want(t, "name", s.Name, "merge-sweep")
			want(t, "depends_on", s.DependsOn, []Dependency{{DepAfterOK, "sweep"}})
			want(t, "shell ${} kept", strings.Contains(s.Task.Script, `"merged-${HPC_JOB_ID}.txt"`), true)
		},
		"array.hcl": func(t *testing.T, s *Spec) {
			want(t, "array", *s.Array, Array{Count: 10, MaxRunning: 3})
			want(t, "output", s.Output, "sweep-%j-%a.out")
		},
	}
	files, err := filepath.Glob(filepath.Join("examples", "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		base := filepath.Base(path)
		seen[base] = true
		if base == "bad.hcl" {
			continue // TestBadExample
		}
		t.Run(base, func(t *testing.T) {
			s, err := ParseFile(path, nil)
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if check := checks[base]; check != nil {
				check(t, s)
			}
		})
	}
	for name := range checks {
		if !seen[name] {
			t.Errorf("examples/%s is missing", name)
		}
	}
}

// TestBadExample checks the README's validate example: both mistakes, at
// the positions the README shows.
func TestBadExample(t *testing.T) {
	_, err := ParseFile(filepath.Join("examples", "bad.hcl"), nil)
	var je *Error
	if !errors.As(err, &je) {
		t.Fatalf("bad.hcl: got %v, want diagnostics", err)
	}
	lines := je.Lines()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "examples/bad.hcl:2:14: Invalid value for walltime") ||
		!strings.HasPrefix(lines[1], "examples/bad.hcl:4:14: Invalid value for memory") {
		t.Errorf("bad.hcl diagnostics = %q", lines)
	}
}

// TestExampleOverride checks that -var reaches the arguments, converted from
// the command line's string to the default's number type and back.
func TestExampleOverride(t *testing.T) {
	s, err := ParseFile(filepath.Join("examples", "train-nvlink.hcl"), map[string]string{"epochs": "10"})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "args", s.Task.Args[3], "10")
}

func TestParseFileErrors(t *testing.T) {
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.hcl"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want a not-exist error", err)
	}
}

func want(t *testing.T, what string, got, exp any) {
	t.Helper()
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("%s = %#v, want %#v", what, got, exp)
	}
}
