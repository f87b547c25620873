package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hpc-sched/hpc/jobs"
)

// writeDiagnostics prints each HCL problem as a greppable
// "file:line:col: summary: detail" line (the form editors and CI logs
// link to) followed by the offending source line with the range
// underlined:
//
//	train.hcl:4:3: Unsupported argument: An argument named "bogus" is not expected here.
//	    4 |   bogus = 1
//	      |   ^^^^^
func writeDiagnostics(w io.Writer, je *jobs.Error) {
	lines := je.Lines()
	for i, d := range je.Diags {
		if i < len(lines) {
			fmt.Fprintln(w, lines[i])
		}
		if d.Subject == nil {
			continue
		}
		f := je.Files[d.Subject.Filename]
		if f == nil {
			continue
		}
		writeSnippet(w, f.Bytes, *d.Subject)
	}
}

func writeSnippet(w io.Writer, src []byte, r hcl.Range) {
	text, ok := sourceLine(src, r.Start.Line)
	if !ok {
		return
	}
	text = strings.TrimRight(text, "\r")
	runes := []rune(text)
	start := r.Start.Column - 1
	if start < 0 || start > len(runes) {
		return
	}
	end := len(runes)
	if r.End.Line == r.Start.Line && r.End.Column-1 > start && r.End.Column-1 < end {
		end = r.End.Column - 1
	}
	width := end - start
	if width < 1 {
		width = 1 // a point (end of file, a missing attribute): one caret
	}
	// Keep tabs in the indent so the carets line up under the text.
	var indent strings.Builder
	for _, c := range runes[:start] {
		if c == '\t' {
			indent.WriteRune('\t')
		} else {
			indent.WriteByte(' ')
		}
	}
	num := fmt.Sprint(r.Start.Line)
	pad := strings.Repeat(" ", len(num))
	fmt.Fprintf(w, "  %s | %s\n", num, text)
	fmt.Fprintf(w, "  %s | %s%s\n", pad, indent.String(), strings.Repeat("^", width))
}

// sourceLine returns line n (1-based) of src.
func sourceLine(src []byte, n int) (string, bool) {
	if n < 1 || !utf8.Valid(src) {
		return "", false
	}
	lines := strings.Split(string(src), "\n")
	if n > len(lines) {
		return "", false
	}
	return lines[n-1], true
}
