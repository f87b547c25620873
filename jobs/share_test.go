package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestGPUShare(t *testing.T) {
	good := []struct {
		src  string
		want float64
	}{
		{"gpu { share = 0.25 }", 0.25},
		{"gpu {\n count = 1\n share = 0.01\n}", 0.01},
		{"gpu { share = 0.99 }", 0.99},
		{"gpu { count = 2 }", 0},
	}
	for _, c := range good {
		spec, err := Parse("ok.hcl", []byte(job("resources {\n"+c.src+"\n}")), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if spec.Resources.GPU.Share != c.want || spec.Resources.GPU.Count != max(1, spec.Resources.GPU.Count) {
			t.Errorf("%s: share %v count %d, want %v", c.src, spec.Resources.GPU.Share, spec.Resources.GPU.Count, c.want)
		}
	}
	bad := []struct {
		src, phrase string
		line, col   int
	}{
		{`gpu { share = 0 }`, "from 0.01 to 0.99 in steps of 0.01", 3, 15},
		{`gpu { share = 1 }`, "For a whole GPU leave share out", 3, 15},
		{`gpu { share = 0.125 }`, "steps of 0.01", 3, 15},
		{`gpu { share = -0.5 }`, "from 0.01 to 0.99", 3, 15},
		{`gpu { share = "half" }`, "must be a number", 3, 15},
		{"gpu {\ncount = 2\nshare = 0.5\n}", "set count = 1", 4, 9},
		{"gpu {\nlink = \"nvlink\"\nshare = 0.5\n}", "remove link", 5, 9},
	}
	for _, c := range bad {
		_, err := Parse("bad.hcl", []byte(job("resources {\n"+c.src+"\n}")), nil)
		var perr *Error
		if !errors.As(err, &perr) {
			t.Fatalf("%s: error %v, want *Error", c.src, err)
		}
		d := perr.Diags[0]
		if !strings.Contains(d.Summary+": "+d.Detail, c.phrase) || d.Subject.Start.Line != c.line || d.Subject.Start.Column != c.col {
			t.Errorf("%s: %d:%d %q, want %d:%d %q", c.src, d.Subject.Start.Line, d.Subject.Start.Column, d.Detail, c.line, c.col, c.phrase)
		}
	}
}
