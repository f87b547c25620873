package jobs

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error carries every HCL diagnostic of a failed Parse with the parser's file
// map, so that callers can print source snippets (Pretty) or plain lines
// (Lines, for API error bodies).
type Error struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File

	// filename prefixes diagnostics that have no source location (a -var
	// override of an undeclared variable, say).
	filename string
}

// Error returns all diagnostics, one per line, "file:line:col: summary: detail".
func (e *Error) Error() string {
	return strings.Join(e.Lines(), "\n")
}

// Lines returns the diagnostics as "file:line:col: summary: detail" lines.
// Warnings, if any, are marked as such; diagnostics without a location are
// prefixed with the file name only.
func (e *Error) Lines() []string {
	lines := make([]string, 0, len(e.Diags))
	for _, d := range e.Diags {
		var b strings.Builder
		switch {
		case d.Subject != nil:
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		case e.filename != "":
			fmt.Fprintf(&b, "%s: ", e.filename)
		}
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning: ")
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString(": ")
			// One diagnostic, one line: hcl's details sometimes wrap.
			b.WriteString(strings.Join(strings.Fields(d.Detail), " "))
		}
		lines = append(lines, b.String())
	}
	return lines
}

// Pretty renders the diagnostics with hcl's text writer: source snippets with
// the offending range underlined, for terminals.
func (e *Error) Pretty() string {
	var buf bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&buf, e.Files, 78, false)
	if err := w.WriteDiagnostics(e.Diags); err != nil {
		// Writing to a bytes.Buffer cannot fail; fall back to plain lines anyway.
		return e.Error()
	}
	return buf.String()
}
