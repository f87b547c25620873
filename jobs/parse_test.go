package jobs

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// job wraps attribute lines into a minimal valid job so that each case
// states only its mistake. The wrapped lines start on line 2, column 3.
func job(lines ...string) string {
	return "job \"j\" {\n  " + strings.Join(lines, "\n  ") + "\n  task { command = \"/bin/true\" }\n}\n"
}

// task wraps task attribute lines; they start on line 3, column 5.
func task(lines ...string) string {
	return "job \"j\" {\n  task {\n    " + strings.Join(lines, "\n    ") + "\n  }\n}\n"
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name      string
		src       string
		vars      map[string]string
		line, col int
		phrase    string
	}{
		{"memory unit GB", job(`resources { memory = "64GB" }`), nil, 2, 24, `unknown unit "GB": use KiB, MiB, GiB, TiB (or K, M, G, T)`},
		{"memory too small", job(`resources { memory = 1024 }`), nil, 2, 24, "must be from 1MiB to 64TiB"},
		{"memory too large", job(`resources { memory = "65TiB" }`), nil, 2, 24, "must be from 1MiB"},
		{"memory negative", job(`resources { memory = "-1G" }`), nil, 2, 24, "negative"},
		{"cpus zero", job(`resources { cpus = 0 }`), nil, 2, 22, "cpus must be a whole number from 1 to 4096"},
		{"cpus fraction", job(`resources { cpus = 1.5 }`), nil, 2, 22, "whole number"},
		{"cpus string", job(`resources { cpus = "many" }`), nil, 2, 22, "cpus must be a whole number"},
		{"priority high", job(`priority = 1001`), nil, 2, 14, "priority must be a whole number from 0 to 1000"},
		{"priority negative", job(`priority = -1`), nil, 2, 14, "from 0 to 1000"},
		{"nodes zero", job(`nodes = 0`), nil, 2, 11, "nodes must be a whole number from 1 to 10000"},
		{"walltime bad", job(`walltime = "4 hours"`), nil, 2, 14, "invalid duration"},
		{"walltime days", job(`walltime = "2d"`), nil, 2, 14, `unknown unit "d"`},
		{"walltime zero", job(`walltime = "0"`), nil, 2, 14, "walltime must be from 1s"},
		{"walltime number", job(`walltime = 90`), nil, 2, 14, "quoted duration"},
		{"walltime too long", job(`walltime = "400-00:00:00"`), nil, 2, 14, "365 days"},
		{"walltime negative", job(`walltime = "-4h"`), nil, 2, 14, "negative"},
		{"requeue not bool", job(`requeue = "maybe"`), nil, 2, 13, "true or false"},
		{"unknown attribute", job(`walltim = "4h"`), nil, 2, 3, `Did you mean "walltime"?`},
		{"unknown block", job(`resource { cpus = 1 }`), nil, 2, 3, `Unsupported block type`},
		{"account bad", job(`account = "m l"`), nil, 2, 13, "account must be 1 to 64 characters"},
		{"account empty", job(`account = ""`), nil, 2, 13, "account must be"},
		{"feature bad", job(`features = ["ib", "has space"]`), nil, 2, 21, `Feature "has space"`},
		{"too many features", job(`features = [` + strings.Repeat(`"f",`, 33) + `]`), nil, 2, 14, "at most 32 entries"},
		{"features not list", job(`features = "ib"`), nil, 2, 14, "list of strings"},
		{"features null entry", job(`features = [null]`), nil, 2, 15, "must not be null"},
		{"output empty", job(`output = ""`), nil, 2, 12, "file name pattern"},
		{"error too long", job(`error = "` + strings.Repeat("x", 4097) + `"`), nil, 2, 11, "file name pattern of 1 to 4096 bytes"},
		{"output NUL", job(`output = "a\u0000b"`), nil, 2, 12, "NUL"},
		{"gpu count", job("resources {\n    gpu { count = 65 }\n  }"), nil, 3, 19, "gpu.count must be a whole number from 0 to 64"},
		{"gpu link", job("resources {\n    gpu { link = \"pcie\" }\n  }"), nil, 3, 18, `gpu.link must be "any" or "nvlink"`},
		{"gpu memory", job("resources {\n    gpu { memory = \"2TiB\" }\n  }"), nil, 3, 20, "gpu.memory must be from 0 bytes to 1TiB"},
		{"gpu count zero with model", job("resources {\n    gpu {\n      count = 0\n      model = \"H100\"\n    }\n  }"), nil, 4, 15, "ask for at least one GPU"},
		{"gpu model empty", job("resources {\n    gpu { model = \" \" }\n  }"), nil, 3, 19, "gpu.model must be 1 to 128"},
		{"duplicate resources", job("resources { cpus = 1 }", "resources { cpus = 2 }"), nil, 3, 3, "Duplicate resources block"},
		{"no task", "job \"j\" {\n  nodes = 1\n}\n", nil, 1, 1, "Missing task block"},
		{"command and script", task(`command = "/bin/echo"`, `script = "echo"`), nil, 4, 5, "exactly one of command"},
		{"neither command nor script", task(`env = {}`), nil, 2, 3, "Missing task command"},
		{"empty command", task(`command = ""`), nil, 3, 15, "command must name a program"},
		{"empty script", task(`script = "  "`), nil, 3, 14, "script must hold 1 byte to 1 MiB"},
		{"args with script", task(`script = "echo"`, `args = ["a"]`), nil, 4, 5, "args go with command"},
		{"args not strings", task(`command = "x"`, `args = [{a = 1}]`), nil, 4, 13, "args entry must be a string"},
		{"too many args", task(`command = "x"`, `args = [`+strings.Repeat(`"a",`, 4097)+`]`), nil, 4, 12, "at most 4096 entries"},
		{"env HPC_", task(`command = "x"`, `env = { HPC_JOB_ID = "1" }`), nil, 4, 13, "set by the batch system"},
		{"env bad key", task(`command = "x"`, `env = { "1ABC" = "1" }`), nil, 4, 13, "not a valid shell variable name"},
		{"env bad key dash", task(`command = "x"`, `env = { "A-B" = "1" }`), nil, 4, 13, "not a valid shell variable name"},
		{"env not map", task(`command = "x"`, `env = ["A"]`), nil, 4, 11, "map of strings"},
		{"env list value", task(`command = "x"`, `env = { A = [1] }`), nil, 4, 17, "env value must be a string"},
		{"workdir empty", task(`command = "x"`, `workdir = ""`), nil, 4, 15, "workdir must be a directory path"},
		{"unknown task attr", task(`command = "x"`, `cmd = "y"`), nil, 4, 5, "Unsupported argument"},
		{"bad job name", "job \"a b\" {\n  task { command = \"x\" }\n}\n", nil, 1, 5, "Job name \"a b\""},
		{"long job name", "job \"" + strings.Repeat("a", 129) + "\" {\n  task { command = \"x\" }\n}\n", nil, 1, 5, "1 to 128 characters"},
		{"two jobs", "job \"a\" {\n  task { command = \"x\" }\n}\njob \"b\" {\n  task { command = \"x\" }\n}\n", nil, 4, 1, "Duplicate job block"},
		{"no job", "variable \"x\" { default = 1 }\n", nil, 1, 1, "Missing job block"},
		{"top-level attribute", "x = 1\n" + job(), nil, 1, 1, "Unsupported argument"},
		{"checkpoint mode", job(`checkpoint { mode = "dump" }`), nil, 2, 23, `checkpoint.mode must be "signal"`},
		{"checkpoint signal", job(`checkpoint { signal = "SIGFOO" }`), nil, 2, 25, `unknown signal "SIGFOO"`},
		{"checkpoint SIGKILL", job(`checkpoint { signal = "KILL" }`), nil, 2, 25, "SIGKILL cannot be caught"},
		{"checkpoint warn >= walltime", job(`walltime = "10m"`, `checkpoint { warn = "10m" }`), nil, 3, 23, "must be shorter than the walltime"},
		{"checkpoint warn zero", job(`checkpoint { warn = "0s" }`), nil, 2, 23, "checkpoint.warn must be from 1s"},
		{"checkpoint interval", job(`checkpoint { interval = "500ms" }`), nil, 2, 27, "at least 1s"},
		{"checkpoint max_restarts", job(`checkpoint { max_restarts = 1001 }`), nil, 2, 31, "from 0 to 1000"},
		{"checkpoint retry_on_exit zero", job(`checkpoint { retry_on_exit = [75, 0] }`), nil, 2, 37, "from 1 to 255"},
		{"checkpoint retry_on_exit not a list", job(`checkpoint { retry_on_exit = 75 }`), nil, 2, 32, "list of exit codes"},
		{"checkpoint on_failure", job(`checkpoint { on_failure = "retry" }`), nil, 2, 29, `"requeue"`},
		{"preemptible", job(`preemptible = "maybe"`), nil, 2, 17, "true or false"},
		{"array count zero", job(`array { count = 0 }`), nil, 2, 19, "array.count must be a whole number from 1 to 100000"},
		{"array count huge", job(`array { count = 100001 }`), nil, 2, 19, "from 1 to 100000"},
		{"array count missing", job("array {\n  }"), nil, 2, 3, "An array needs count = N"},
		{"array max_running > count", job("array {\n    count = 5\n    max_running = 6\n  }"), nil, 4, 19, "array.max_running must be a whole number from 1 to 5"},
		{"array label", job(`array "x" { count = 1 }`), nil, 2, 9, "Extraneous label"},
		{"syntax error", job(`nodes = `), nil, 2, 11, "Invalid expression"},
		{"function call", job(`nodes = max(1, 2)`), nil, 2, 11, "Function calls not allowed"},
		{"for expression", task(`command = "x"`, `args = [for a in ["x"] : a]`), nil, 4, 12, "For expressions are not supported"},
		{"template for", task(`command = "%{ for a in ["x"] }${a}%{ endfor }"`), nil, 3, 16, "Template for directives"},
		{"deep nesting", task(`command = "x"`, `args = `+strings.Repeat("[", 100)+strings.Repeat("]", 100)), nil, 4, 74, "nest at most 64 deep"},
		{"too much arithmetic", job(`priority = 1` + strings.Repeat("+0", 257)), nil, 2, 527, "at most 256 arithmetic operators"},
		{"too many operators", job(`requeue = true` + strings.Repeat(" == true", 10001)), nil, 2, 80018, "at most 10000 operators"},
		{"too many tokens", task(`command = "x"`, `args = [`+strings.Repeat(`1,`, 40000)+`]`), nil, 4, 65534, "at most 65536 tokens"},
		{"number too long", job(`priority = 1` + strings.Repeat("0", 64)), nil, 2, 14, "Number out of range"},
		{"number too large", job(`priority = 1e309`), nil, 2, 14, "Number out of range"},
		{"override number too large", "variable \"n\" { default = 2 }\n" + job(`nodes = var.n`), map[string]string{"n": "1e400"}, 1, 26, `"1e400" is not a number`},
		{"unknown variable ref", job(`nodes = var.n`), nil, 2, 14, `Unsupported attribute`},
		{"variable no default", "variable \"n\" {}\n" + job(`nodes = var.n`), nil, 1, 1, `Variable "n" has no default`},
		{"variable duplicate", "variable \"n\" { default = 1 }\nvariable \"n\" { default = 2 }\n" + job(), nil, 2, 10, `Variable "n" was already declared`},
		{"variable bad attr", "variable \"n\" { value = 1 }\n" + job(), nil, 1, 16, `Unsupported argument`},
		{"variable refs variable", "variable \"a\" { default = 1 }\nvariable \"b\" { default = var.a }\n" + job(), nil, 2, 26, `Variables not allowed`},
		{"override not a number", "variable \"n\" { default = 2 }\n" + job(`nodes = var.n`), map[string]string{"n": "two"}, 1, 26, `"two" is not a number`},
		{"override not a bool", "variable \"r\" { default = false }\n" + job(`requeue = var.r`), map[string]string{"r": "yes please"}, 1, 26, "write true or false"},
		{"override of list", "variable \"l\" { default = [\"a\"] }\n" + job(), map[string]string{"l": "b"}, 1, 26, "cannot be set from the command line"},
		{"override converts but out of range", "variable \"n\" { default = 2 }\n" + job(`nodes = var.n`), map[string]string{"n": "0"}, 3, 11, "nodes must be a whole number from 1"},
		{"override string to bad size", "variable \"m\" { default = \"1GiB\" }\n" + job(`resources { memory = var.m }`), map[string]string{"m": "1GB"}, 3, 24, `unknown unit "GB"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := Parse("bad.hcl", []byte(tc.src), tc.vars)
			if spec != nil {
				t.Fatalf("got a Spec, want an error for:\n%s", tc.src)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			d := perr.Diags[0]
			if d.Severity != hcl.DiagError || d.Subject == nil {
				t.Fatalf("first diagnostic %v has no subject or is not an error", d)
			}
			if d.Subject.Filename != "bad.hcl" || d.Subject.Start.Line != tc.line || d.Subject.Start.Column != tc.col {
				t.Errorf("at %s:%d:%d, want bad.hcl:%d:%d (%s)", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, tc.line, tc.col, err)
			}
			if !strings.Contains(d.Summary+": "+d.Detail, tc.phrase) {
				t.Errorf("diagnostic %q does not contain %q", d.Summary+": "+d.Detail, tc.phrase)
			}
			if perr.Pretty() == "" || len(perr.Lines()) != len(perr.Diags) {
				t.Errorf("Pretty/Lines empty or of the wrong length")
			}
		})
	}
}
