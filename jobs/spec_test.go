package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string, vars map[string]string) *Spec {
	t.Helper()
	s, err := Parse("test.hcl", []byte(src), vars)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return s
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, "job \"d\" {\n  task { command = \"/bin/true\" }\n}\n", nil)
	want(t, "spec", *s, Spec{
		Name:      "d",
		Priority:  100,
		Nodes:     1,
		Resources: Resources{CPUs: 1, Memory: 1 << 30, GPU: GPU{Link: "any"}},
		Task:      Task{Command: "/bin/true", Env: map[string]string{}},
		Output:    "hpc-%j.out",
		Error:     "",
	})
}

func TestBlockDefaults(t *testing.T) {
	cases := []struct {
		name  string
		lines string
		check func(t *testing.T, s *Spec)
	}{
		{"gpu block asks for one GPU", "resources {\n gpu {\n model = \"A100\"\n }\n }", func(t *testing.T, s *Spec) {
			want(t, "gpu", s.Resources.GPU, GPU{Count: 1, Model: "A100", Link: "any"})
		}},
		{"gpu count zero alone", "resources {\n gpu {\n count = 0\n }\n }", func(t *testing.T, s *Spec) {
			want(t, "gpu", s.Resources.GPU, GPU{Count: 0, Link: "any"})
		}},
		{"checkpoint defaults", "checkpoint {}", func(t *testing.T, s *Spec) {
			want(t, "checkpoint", *s.Checkpoint, Checkpoint{Mode: "signal", Signal: "SIGUSR1", Warn: 5 * time.Minute, MaxRestarts: 3})
		}},
		{"checkpoint warn at most half the walltime", "walltime = \"4m\"\n checkpoint {}", func(t *testing.T, s *Spec) {
			want(t, "warn", s.Checkpoint.Warn, 2*time.Minute)
		}},
		{"criu has no default signal", "checkpoint {\n mode = \"criu\"\n max_restarts = 0\n }", func(t *testing.T, s *Spec) {
			want(t, "checkpoint", *s.Checkpoint, Checkpoint{Mode: "criu", Warn: 5 * time.Minute, OnFailure: "requeue"})
		}},
		{"restart attributes", "preemptible = true\n checkpoint {\n retry_on_exit = [75, 75, 3]\n mode = \"criu\"\n on_failure = \"kill\"\n }", func(t *testing.T, s *Spec) {
			want(t, "preemptible", s.Preemptible, true)
			want(t, "checkpoint", *s.Checkpoint, Checkpoint{Mode: "criu", Warn: 5 * time.Minute, MaxRestarts: 3, RetryOnExit: []int{75, 3}, OnFailure: "kill"})
		}},
		{"signal normalised", "checkpoint {\n signal = \"usr2\"\n interval = \"0\"\n }", func(t *testing.T, s *Spec) {
			want(t, "signal", s.Checkpoint.Signal, "SIGUSR2")
		}},
		{"array max_running defaults to count", "array {\n count = 7\n }", func(t *testing.T, s *Spec) {
			want(t, "array", *s.Array, Array{Count: 7, MaxRunning: 7})
		}},
		{"features deduplicated in order", "features = [\"ib\", \"a100\", \"ib\"]", func(t *testing.T, s *Spec) {
			want(t, "features", s.Features, []string{"ib", "a100"})
		}},
		{"null means unset", "priority = null\n nodes = null", func(t *testing.T, s *Spec) {
			want(t, "priority", s.Priority, 100)
			want(t, "nodes", s.Nodes, 1)
		}},
		{"memory as bytes", "resources {\n memory = 2097152\n }", func(t *testing.T, s *Spec) {
			want(t, "memory", s.Resources.Memory, int64(2<<20))
		}},
		{"bounds inclusive", "priority = 1000\n nodes = 10000\n walltime = \"365-00:00:00\"\n resources {\n cpus = 4096\n memory = \"64TiB\"\n gpu {\n count = 64\n memory = \"1TiB\"\n }\n }\n array {\n count = 100000\n max_running = 1\n }", func(t *testing.T, s *Spec) {
			want(t, "priority", s.Priority, 1000)
			want(t, "gpu count", s.Resources.GPU.Count, 64)
			want(t, "array", *s.Array, Array{Count: 100000, MaxRunning: 1})
		}},
		{"arithmetic and conditionals", "priority = 10 * 5\n nodes = true ? 2 : 3", func(t *testing.T, s *Spec) {
			want(t, "priority", s.Priority, 50)
			want(t, "nodes", s.Nodes, 2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, job(tc.lines), nil))
		})
	}
}

func TestVariables(t *testing.T) {
	src := `
variable "epochs" { default = 90 }
variable "name"   {
  description = "who to greet"
  default     = "world"
}
variable "requeue" { default = false }
variable "mem"     { default = "2GiB" }
variable "free"    {}
job "v" {
  requeue = var.requeue
  resources { memory = var.mem }
  task {
    command = "/bin/echo"
    args    = ["${var.name}", "--epochs=${var.epochs}", var.free]
    env     = { EPOCHS = var.epochs }
  }
}
`
	cases := []struct {
		name    string
		vars    map[string]string
		args    []string
		requeue bool
		mem     int64
	}{
		{"defaults", map[string]string{"free": "x"}, []string{"world", "--epochs=90", "x"}, false, 2 << 30},
		{"overrides converted", map[string]string{"free": "y", "epochs": "10", "requeue": "true", "name": "you", "mem": "512MiB"},
			[]string{"you", "--epochs=10", "y"}, true, 512 << 20},
		{"number override keeps its text", map[string]string{"free": "", "epochs": " 1.5 "}, []string{"world", "--epochs=1.5", ""}, false, 2 << 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, src, tc.vars)
			want(t, "args", s.Task.Args, tc.args)
			want(t, "requeue", s.Requeue, tc.requeue)
			want(t, "memory", s.Resources.Memory, tc.mem)
		})
	}

	// Errors without a location in the file still name it.
	_, err := Parse("v.hcl", []byte(src), map[string]string{"free": "x", "epoch": "1"})
	var perr *Error
	if !errors.As(err, &perr) || len(perr.Diags) != 1 || perr.Diags[0].Subject != nil {
		t.Fatalf("unknown -var: got %v, want one diagnostic without a subject", err)
	}
	if line := perr.Lines()[0]; !strings.HasPrefix(line, `v.hcl: Undeclared variable: -var epoch=...`) || !strings.Contains(line, "declared variables: epochs, free, mem, name, requeue") {
		t.Errorf("unknown -var line = %q", line)
	}
	// A missing value is reported once, not again where it is used.
	_, err = Parse("v.hcl", []byte(src), nil)
	if !errors.As(err, &perr) || len(perr.Diags) != 1 || !strings.Contains(err.Error(), `v.hcl:9:1: Missing variable value: Variable "free" has no default`) {
		t.Errorf("missing value: got %v", err)
	}
}

func TestErrorFormats(t *testing.T) {
	src := job(`priority = 5000`, `resources { memory = "64GB" }`)
	_, err := Parse("f.hcl", []byte(src), nil)
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %v, want *Error", err)
	}
	lines := perr.Lines()
	want(t, "lines", lines, []string{
		"f.hcl:2:14: Invalid value for priority: priority must be a whole number from 0 to 1000; got 5000.",
		`f.hcl:3:24: Invalid value for memory: unknown unit "GB": use KiB, MiB, GiB, TiB (or K, M, G, T)`,
	})
	want(t, "Error()", err.Error(), strings.Join(lines, "\n"))
	pretty := perr.Pretty()
	for _, frag := range []string{"Error: Invalid value for memory", `memory = "64GB"`, "on f.hcl line 3"} {
		if !strings.Contains(pretty, frag) {
			t.Errorf("Pretty() lacks %q:\n%s", frag, pretty)
		}
	}
}

func TestFileSize(t *testing.T) {
	big := job() + "#" + strings.Repeat("x", MaxFileSize) + "\n"
	path := filepath.Join(t.TempDir(), "big.hcl")
	if err := os.WriteFile(path, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(path, nil)
	if err == nil || !strings.Contains(err.Error(), "big.hcl:1:1: Job file too large") {
		t.Errorf("got %v, want a too-large diagnostic", err)
	}

	// Heredocs are bounded by lines, which hcl parses in quadratic time.
	script := strings.Repeat("echo hello\n", maxStringParts-10)
	s := mustParse(t, task("script = <<-EOT\n"+script+"EOT"), nil)
	want(t, "script length", len(s.Task.Script), len(script))
	script = strings.Repeat("echo hello\n", maxStringParts+1)
	_, err = Parse("long.hcl", []byte(task("script = <<-EOT\n"+script+"EOT")), nil)
	if err == nil || !strings.Contains(err.Error(), "lines of heredocs") {
		t.Errorf("long heredoc: got %v", err)
	}
	// A long quoted script is one string part and fine up to 1 MiB.
	script = strings.Repeat(`echo hello\n`, 80000)
	if _, err := Parse("q.hcl", []byte(task(`script = "`+script+`"`)), nil); err != nil {
		t.Errorf("long quoted script: %v", err)
	}
}

func TestVariableAmplification(t *testing.T) {
	src := "variable \"s\" { default = \"" + strings.Repeat("x", maxVarValue+1) + "\" }\n" + job()
	if _, err := Parse("a.hcl", []byte(src), nil); err == nil || !strings.Contains(err.Error(), "Variable default too large") {
		t.Errorf("large default: got %v", err)
	}
	src = "variable \"s\" { default = \"x\" }\n" + task(`command = "x"`, `args = [`+strings.Repeat(`var.s,`, maxVarRefs+1)+`]`)
	if _, err := Parse("a.hcl", []byte(src), nil); err == nil || !strings.Contains(err.Error(), "reference variables at most") {
		t.Errorf("many references: got %v", err)
	}
	src = "variable \"s\" { default = \"x\" }\n" + job()
	if _, err := Parse("a.hcl", []byte(src), map[string]string{"s": strings.Repeat("y", maxOverrideLen+1)}); err == nil || !strings.Contains(err.Error(), "at most 65536 are allowed") {
		t.Errorf("large override: got %v", err)
	}
}
