package jobs

import (
	"bytes"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The rule for shell text in a job file (docs/user-guide.md, "Scripts"):
//
// In a task's script, only ${var.NAME} (and ${ var.NAME ...} expressions
// that start with var.) is HCL; every other "${" and "%{" reaches the shell
// exactly as written, so that ${HOME}, ${X:-default}, ${#a[@]} and $VAR of an
// existing sbatch script work unchanged. "$${" still writes a literal "${"
// (files written for the old rule keep working).
//
// The job name label may use ${var.NAME} too: `job "sweep-${var.dataset}"`.
//
// HCL itself has no such rule, so Parse rewrites the source before parsing:
// it escapes those "${" and "%{" (inserting one '$' or '%'), and maps every
// diagnostic back to the file as the user wrote it.

// rewrite is a source rewritten for the shell rule: the insertions are the
// offsets, in the rewritten source, of the bytes that were added.
type rewrite struct {
	src        []byte
	insertions []int
}

// shellPassThrough applies the rule to src. A file it cannot make sense of
// (a lexing error) is returned unchanged, for the parser to report.
func shellPassThrough(filename string, src []byte) rewrite {
	// The lexer recovers from errors; tokens up to the script value are
	// right even when the script itself confuses it (a '#' inside ${...}).
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	type span struct{ start, end int }
	var spans []span // byte ranges of src to escape within
	var labels []span
	var stack []string
	header := ""        // the identifier that starts the current statement
	atStatement := true // the next token starts a statement
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		switch tok.Type {
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			atStatement = true
			header = ""
			continue
		case hclsyntax.TokenIdent:
			if atStatement {
				header = string(tok.Bytes)
			}
			name := string(tok.Bytes)
			switch {
			case atStatement && name == "script" && len(stack) > 0 && stack[len(stack)-1] == "task":
				if sp, ok := scriptValue(src, tokens, i); ok {
					spans = append(spans, span(sp))
				}
			case atStatement && name == "job" && len(stack) == 0 && i+1 < len(tokens) && tokens[i+1].Type == hclsyntax.TokenOQuote:
				start := tokens[i+1].Range.End.Byte
				if end := bytes.IndexAny(src[start:], "\"\n"); end >= 0 {
					labels = append(labels, span{start, start + end})
				}
			}
		case hclsyntax.TokenEqual:
			header = "" // an object value, not a block
		case hclsyntax.TokenOBrace:
			stack = append(stack, header)
			header = ""
			atStatement = true
			continue
		case hclsyntax.TokenCBrace:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			atStatement = true
			continue
		}
		atStatement = false
	}
	if len(spans) == 0 && len(labels) == 0 {
		return rewrite{src: src}
	}
	// Spans are escaped in file order: a job label comes before its task.
	type edit struct {
		span
		label bool
	}
	var edits []edit
	for _, sp := range labels {
		edits = append(edits, edit{sp, true})
	}
	for _, sp := range spans {
		edits = append(edits, edit{sp, false})
	}
	sort.Slice(edits, func(a, b int) bool { return edits[a].start < edits[b].start })
	var out []byte
	var ins []int
	last := 0
	for _, e := range edits {
		for k := e.start; k+1 < e.end; k++ {
			c := src[k]
			switch {
			case (c != '$' && c != '%') || src[k+1] != '{':
				continue
			case k > e.start && src[k-1] == c:
				continue // already escaped: "$${" or "%%{"
			case !e.label && c == '$' && startsVarRef(src[k+2:e.end]):
				continue // ${var.x}: HCL
			case e.label && c == '%':
				continue
			}
			out = append(out, src[last:k]...)
			ins = append(ins, len(out))
			out = append(out, c)
			last = k
		}
	}
	out = append(out, src[last:]...)
	return rewrite{src: out, insertions: ins}
}

// startsVarRef reports whether the text after "${" is a reference to a job
// file variable: optional "~" and blanks, then "var.".
func startsVarRef(b []byte) bool {
	s := strings.TrimLeft(string(b[:min(len(b), 64)]), "~ \t")
	return strings.HasPrefix(s, "var.")
}

// scriptValue finds the text of the value of the script attribute whose
// name is tokens[i]: a heredoc's lines or a quoted string's inside.
func scriptValue(src []byte, tokens hclsyntax.Tokens, i int) (struct{ start, end int }, bool) {
	var none struct{ start, end int }
	if i+2 >= len(tokens) || tokens[i+1].Type != hclsyntax.TokenEqual {
		return none, false
	}
	open := tokens[i+2]
	start := open.Range.End.Byte
	switch open.Type {
	case hclsyntax.TokenOHeredoc:
		delim := strings.TrimLeft(strings.TrimSpace(string(open.Bytes)), "<-")
		for pos := start; pos < len(src); {
			nl := bytes.IndexByte(src[pos:], '\n')
			lineEnd := len(src)
			if nl >= 0 {
				lineEnd = pos + nl
			}
			if strings.TrimSpace(string(src[pos:lineEnd])) == delim {
				return struct{ start, end int }{start, pos}, true
			}
			if nl < 0 {
				break
			}
			pos = lineEnd + 1
		}
	case hclsyntax.TokenOQuote:
		for k := start; k < len(src) && src[k] != '\n'; k++ {
			switch src[k] {
			case '\\':
				k++
			case '"':
				return struct{ start, end int }{start, k}, true
			}
		}
	}
	return none, false
}

// original maps a position in the rewritten source back to the file.
func (r rewrite) original(p hcl.Pos) hcl.Pos {
	if len(r.insertions) == 0 {
		return p
	}
	lineStart := bytes.LastIndexByte(r.src[:min(p.Byte, len(r.src))], '\n') + 1
	for _, at := range r.insertions {
		if at >= p.Byte {
			break
		}
		p.Byte--
		if at >= lineStart {
			p.Column--
		}
	}
	return p
}

// restore maps diagnostics back to the file as written.
func (r rewrite) restore(diags hcl.Diagnostics) {
	if len(r.insertions) == 0 {
		return
	}
	fix := func(rng *hcl.Range) {
		if rng != nil {
			rng.Start, rng.End = r.original(rng.Start), r.original(rng.End)
		}
	}
	for _, d := range diags {
		fix(d.Subject)
		fix(d.Context)
	}
}

// shellHint explains an unknown variable that was most likely meant for the
// shell (HOME, SLURM_JOB_ID...): outside script, ${...} is HCL.
func shellHint(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Summary != "Unknown variable" || d.Subject == nil {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(d.Detail, `There is no variable named "`), `".`)
		if name == d.Detail || name == "var" {
			continue
		}
		d.Detail = "There is no job file variable named \"" + name + "\": outside a script, ${...} is HCL. " +
			"For the shell's variable write $${" + name + "} (or $" + name + "); in a task's script, ${" + name + "} reaches the shell as written. " +
			"Job file variables are written ${var.NAME}."
	}
}
