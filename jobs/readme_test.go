package jobs

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestReadmeTourFiles checks that every job file the README's tour submits
// or validates is in examples/, so the tour works as written in a copy of
// that directory, and that each parses (or, for bad.hcl, fails) as shown.
func TestReadmeTourFiles(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	uses := regexp.MustCompile(`\$ hpcsub (?:submit|validate)[^\n]*?([\w.-]+\.hcl)`).FindAllSubmatch(readme, -1)
	if len(uses) < 5 {
		t.Fatalf("found %d job files in the README's tour, want the tour's five or more", len(uses))
	}
	for _, m := range uses {
		name := string(m[1])
		path := filepath.Join("examples", name)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the README uses %s, which is not in jobs/examples: %v", name, err)
			continue
		}
		if _, err := ParseFile(path, nil); (err != nil) != (name == "bad.hcl") {
			t.Errorf("%s: parse error %v", name, err)
		}
	}
}
