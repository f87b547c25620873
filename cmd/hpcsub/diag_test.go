package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestWriteSnippet(t *testing.T) {
	src := []byte("job \"x\" {\n\tname = \"é\" + bogus\n  multi = [\n    1]\n}")
	rng := func(l1, c1, l2, c2 int) hcl.Range {
		return hcl.Range{Start: hcl.Pos{Line: l1, Column: c1}, End: hcl.Pos{Line: l2, Column: c2}}
	}
	tests := []struct {
		name string
		r    hcl.Range
		want string
	}{
		{"tab indent, multibyte", rng(2, 15, 2, 20), "  2 | \tname = \"é\" + bogus\n    | \t             ^^^^^\n"},
		{"multi-line range underlines to end of line", rng(3, 11, 4, 6), "  3 |   multi = [\n    |           ^\n"},
		{"point", rng(5, 2, 5, 2), "  5 | }\n    |  ^\n"},
		{"past the end", rng(9, 1, 9, 1), ""},
		{"column past the line", rng(5, 9, 5, 9), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeSnippet(&b, src, tt.r)
			if b.String() != tt.want {
				t.Errorf("got:\n%q\nwant:\n%q", b.String(), tt.want)
			}
		})
	}
}
