package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or hang, and that it
// always returns exactly one of a Spec or an *Error with diagnostics.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("examples", "*.hcl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src), "epochs", "10")
		f.Add(string(src), "", "") // no -var: files without variables parse to the end
	}
	f.Add(job(`resources { memory = "64GB" }`), "x", "1")
	f.Add("variable \"n\" { default = 2 }\n"+job(`nodes = var.n`), "n", "3")
	f.Fuzz(func(t *testing.T, src, name, value string) {
		var vars map[string]string
		if name != "" {
			vars = map[string]string{name: value}
		}
		spec, err := Parse("fuzz.hcl", []byte(src), vars)
		if (spec == nil) == (err == nil) {
			t.Fatalf("Parse returned spec %v and error %v", spec, err)
		}
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Diags) == 0 || !perr.Diags.HasErrors() {
				t.Fatalf("error %v is not an *Error with error diagnostics", err)
			}
			_ = perr.Pretty()
			if len(perr.Lines()) != len(perr.Diags) || strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("Lines/Error out of step with Diags")
			}
			return
		}
		if spec.Name == "" || spec.Nodes < 1 || spec.Resources.CPUs < 1 || (spec.Task.Command == "") == (spec.Task.Script == "") {
			t.Fatalf("invalid spec accepted: %+v", spec)
		}
	})
}
