package jobs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Input limits. They keep a hostile file from exhausting the server: the hcl
// parser recurses once per nesting level and the Go runtime aborts (not
// panics) on stack exhaustion, and variables referenced many times could
// otherwise multiply a large value.
const (
	MaxFileSize    = 1 << 20 // bytes of a job file
	maxNesting     = 64      // brackets, braces, parentheses, quotes, interpolations
	maxOperations  = 10000   // operators, attribute and index accesses
	maxVarRefs     = 1024    // references to var.*
	maxVarValue    = 64 << 10
	maxOverrideLen = 64 << 10
	// hcl melds a template's literal parts in time quadratic in their number
	// (one per heredoc line), so a long heredoc could take minutes to parse.
	maxStringParts = 8192
	// Parsing and evaluating are linear in tokens otherwise, but not cheap:
	// a budget keeps the worst file to a fraction of a second.
	maxTokens = 65536
	// Numbers are arbitrary precision: a long chain of products of huge
	// literals makes numbers whose decimal text takes minutes to produce.
	maxArithmetic = 256
	maxNumberLen  = 64
)

var topSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "job", LabelNames: []string{"name"}},
	},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"},
		{Name: "description"},
	},
}

// ParseFile reads path and calls Parse with it.
func ParseFile(path string, vars map[string]string) (*Spec, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src, vars)
}

// ReadFile reads a job file for Parse, at most one byte past MaxFileSize
// so that Parse reports an oversized file itself.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read job file %s: %w", path, err)
	}
	return src, nil
}

// Parse parses one job file's source. vars are -var overrides (name -> raw
// string). On any problem it returns nil and an *Error holding every
// diagnostic found; nothing partial is returned.
func Parse(filename string, src []byte, vars map[string]string) (*Spec, error) {
	return ParseWith(filename, src, vars, Options{})
}

// Options are what Parse needs beyond the job file itself.
type Options struct {
	// ReadScript returns the contents of a task's script_file, a path as
	// written in the file. Nil reads it from disk, relative to the job
	// file's directory (as hpcsub does on the login node); the server
	// passes the files the client sent, never its own disk.
	ReadScript func(name string) ([]byte, error)
}

// ParseWith is Parse with Options.
func ParseWith(filename string, src []byte, vars map[string]string, opt Options) (*Spec, error) {
	p := hclparse.NewParser()
	orig := src
	rw := rewrite{src: src}
	fail := func(diags hcl.Diagnostics) (*Spec, error) {
		rw.restore(diags)
		shellHint(diags)
		sortDiags(diags)
		files := p.Files()
		if f := files[filename]; f != nil {
			// Snippets show the file as the user wrote it.
			f.Bytes = orig
		}
		return nil, &Error{Diags: diags, Files: files, filename: filename}
	}
	if len(src) > MaxFileSize {
		return fail(hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Job file too large",
			Detail:   fmt.Sprintf("The file is %d bytes; a job file may be at most %d bytes (1 MiB). Keep large scripts in their own file and run them with command.", len(src), MaxFileSize),
			Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		}})
	}
	rw = shellPassThrough(filename, src)
	src = rw.src
	if diags := guardSource(filename, src); diags.HasErrors() {
		return fail(diags)
	}
	file, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return fail(diags)
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		// ParseHCL always yields native syntax; be defensive rather than panic.
		return fail(append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported syntax"}))
	}
	diags = append(diags, guardAST(body)...)
	if diags.HasErrors() {
		return fail(diags)
	}

	content, cdiags := file.Body.Content(topSchema)
	diags = append(diags, cdiags...)

	var jobBlock *hcl.Block
	var varBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			varBlocks = append(varBlocks, b)
		case "job":
			if jobBlock != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate job block",
					Detail:   fmt.Sprintf("A job file holds exactly one job block; the first is at %s. Put each job in its own file.", jobBlock.DefRange),
					Subject:  b.DefRange.Ptr(),
				})
				continue
			}
			jobBlock = b
		}
	}
	if jobBlock == nil && !cdiags.HasErrors() {
		r := body.MissingItemRange()
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing job block",
			Detail:   `A job file must hold exactly one job "name" { ... } block, with a task { ... } block inside it holding command = "/bin/echo" (or script = "...") on a line of its own.`,
			Subject:  &r,
		})
	}

	values, vdiags := decodeVariables(filename, varBlocks, vars)
	diags = append(diags, vdiags...)
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(values)},
	}

	var spec *Spec
	if jobBlock != nil {
		var jdiags hcl.Diagnostics
		spec, jdiags = decodeJob(jobBlock, ctx, filename, opt)
		diags = append(diags, jdiags...)
	}
	if diags.HasErrors() || spec == nil {
		return fail(diags)
	}
	return spec, nil
}

// sortDiags orders diagnostics as a reader meets them: command-line ones
// (no location) first, then by position in the file.
func sortDiags(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// guardSource refuses inputs that would drive the recursive-descent parser
// or the evaluator too deep. It works on tokens, so text inside strings and
// heredocs (scripts) does not count.
func guardSource(filename string, src []byte) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, ops, refs, parts, count, arith := 0, 0, 0, 0, 0, 0
	var prev hclsyntax.TokenType
	tooComplex := func(tok hclsyntax.Token, detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Expression too complex",
			Detail:   detail,
			Subject:  tok.Range.Ptr(),
		}}
	}
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenNewline, hclsyntax.TokenComment, hclsyntax.TokenStringLit, hclsyntax.TokenEOF:
		default:
			count++
			if count > maxTokens {
				return tooComplex(tok, fmt.Sprintf("A job file may hold at most %d tokens (names, values, operators, brackets); strings and comments are not counted.", maxTokens))
			}
		}
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			if depth > maxNesting {
				return tooComplex(tok, fmt.Sprintf("Brackets, braces and interpolations may nest at most %d deep in a job file.", maxNesting))
			}
			switch {
			case tok.Type == hclsyntax.TokenOBrack && isPostfix(prev):
				ops++ // an index operation
			case tok.Type == hclsyntax.TokenTemplateInterp || tok.Type == hclsyntax.TokenTemplateControl:
				ops++
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar,
			hclsyntax.TokenSlash, hclsyntax.TokenPercent:
			ops++
			arith++
			if arith > maxArithmetic {
				return tooComplex(tok, fmt.Sprintf("A job file may hold at most %d arithmetic operators.", maxArithmetic))
			}
		case hclsyntax.TokenNumberLit:
			if !saneNumber(string(tok.Bytes)) {
				return hcl.Diagnostics{{
					Severity: hcl.DiagError,
					Summary:  "Number out of range",
					Detail:   fmt.Sprintf("Numbers in a job file must be at most %d characters and within ±1.8e308.", maxNumberLen),
					Subject:  tok.Range.Ptr(),
				}}
			}
		case hclsyntax.TokenBang,
			hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenEqualOp,
			hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenQuestion, hclsyntax.TokenDot, hclsyntax.TokenEllipsis:
			ops++
		case hclsyntax.TokenStringLit:
			// The parser splits a literal at each escaped "$${" and "%%{".
			parts += 1 + bytes.Count(tok.Bytes, []byte("$${")) + bytes.Count(tok.Bytes, []byte("%%{"))
			if parts > maxStringParts {
				return tooComplex(tok, fmt.Sprintf("A job file may hold at most %d lines of heredocs and string parts. Keep long scripts in their own file and run them with command = \"/bin/sh\", args = [\"script.sh\"].", maxStringParts))
			}
		case hclsyntax.TokenIdent:
			if string(tok.Bytes) == "var" {
				refs++
				if refs > maxVarRefs {
					return tooComplex(tok, fmt.Sprintf("A job file may reference variables at most %d times.", maxVarRefs))
				}
			}
		}
		if ops > maxOperations {
			return tooComplex(tok, fmt.Sprintf("A job file may hold at most %d operators, attribute and index accesses.", maxOperations))
		}
		prev = tok.Type
	}
	return nil
}

// saneNumber reports whether a number's text is short and within float64
// range, the bounds on numbers from the file and from -var.
func saneNumber(s string) bool {
	if len(s) > maxNumberLen {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isPostfix reports whether a '[' after a token of type t indexes the value
// before it (rather than starting a tuple).
func isPostfix(t hclsyntax.TokenType) bool {
	switch t {
	case hclsyntax.TokenIdent, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
		hclsyntax.TokenCBrace, hclsyntax.TokenCQuote, hclsyntax.TokenNumberLit, hclsyntax.TokenStar:
		return true
	}
	return false
}

// guardAST refuses for-expressions (in lists, objects and %{ for } template
// directives): nested, they multiply work exponentially, and a job file has
// no need for them.
func guardAST(body *hclsyntax.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n := n.(type) {
		case *hclsyntax.ForExpr:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "For expressions are not supported",
				Detail:   "Job files accept literal values, variables and simple operators; write the list or map out.",
				Subject:  n.OpenRange.Ptr(),
			})
		case *hclsyntax.TemplateJoinExpr:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Template for directives are not supported",
				Detail:   "Job files accept literal values, variables and simple operators; write the text out.",
				Subject:  n.Range().Ptr(),
			})
		}
		return nil
	})
	return diags
}

// decodeVariables evaluates variable defaults and applies -var overrides.
// Variables that fail get an unknown value, which the job decoder skips
// silently, so that one mistake is reported once.
func decodeVariables(filename string, blocks []*hcl.Block, overrides map[string]string) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	values := map[string]cty.Value{}
	decls := map[string]*hcl.Block{}
	for _, b := range blocks {
		name := b.Labels[0]
		nameRange := b.LabelRanges[0].Ptr()
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid variable name",
				Detail:   fmt.Sprintf("Variable name %q must start with a letter and hold only letters, digits, underscores and dashes.", name),
				Subject:  nameRange,
			})
			continue
		}
		if prev, dup := decls[name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate variable",
				Detail:   fmt.Sprintf("Variable %q was already declared at %s; remove one of them.", name, prev.DefRange),
				Subject:  nameRange,
			})
			continue
		}
		decls[name] = b
		values[name] = decodeVariable(b, overrides, &diags)
	}

	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic diagnostics
	for _, name := range names {
		if _, ok := decls[name]; ok {
			continue
		}
		declared := make([]string, 0, len(decls))
		for d := range decls {
			declared = append(declared, d)
		}
		sort.Strings(declared)
		hint := "the file declares no variables"
		if len(declared) > 0 {
			hint = "declared variables: " + strings.Join(declared, ", ")
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Undeclared variable",
			Detail:   fmt.Sprintf("-var %s=...: %s has no variable %q (%s). Declare it with variable %q { default = ... } or drop the -var.", name, filename, name, hint, name),
		})
	}
	return values, diags
}

// decodeVariable returns one variable's value: its override converted to the
// default's type, else its default.
func decodeVariable(b *hcl.Block, overrides map[string]string, diags *hcl.Diagnostics) cty.Value {
	name := b.Labels[0]
	content, cdiags := b.Body.Content(variableSchema)
	*diags = append(*diags, cdiags...)
	if cdiags.HasErrors() {
		return cty.DynamicVal
	}
	var def cty.Value
	var defRange hcl.Range
	hasDefault := false
	if attr, ok := content.Attributes["default"]; ok {
		v, vdiags := attr.Expr.Value(nil)
		*diags = append(*diags, vdiags...)
		if vdiags.HasErrors() {
			return cty.DynamicVal
		}
		if !v.IsWhollyKnown() || valueSize(v, 0) > maxVarValue {
			*diags = append(*diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Variable default too large",
				Detail:   fmt.Sprintf("A variable's value may be at most %d bytes; put large text straight into the job block.", maxVarValue),
				Subject:  attr.Expr.Range().Ptr(),
			})
			return cty.DynamicVal
		}
		def, defRange, hasDefault = v, attr.Expr.Range(), true
	}
	if desc, ok := content.Attributes["description"]; ok {
		d := decoder{}
		d.str(desc, "description")
		*diags = append(*diags, d.diags...)
	}

	raw, overridden := overrides[name]
	if !overridden {
		if !hasDefault || def.IsNull() {
			*diags = append(*diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing variable value",
				Detail:   fmt.Sprintf("Variable %q has no default; give it one (default = ...) or set it with -var %s=VALUE.", name, name),
				Subject:  b.DefRange.Ptr(),
			})
			return cty.DynamicVal
		}
		return def
	}

	bad := func(detail string) cty.Value {
		subject := b.DefRange
		if hasDefault {
			subject = defRange
		}
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid -var value",
			Detail:   detail,
			Subject:  subject.Ptr(),
		})
		return cty.DynamicVal
	}
	if len(raw) > maxOverrideLen {
		return bad(fmt.Sprintf("-var %s: the value is %d bytes; at most %d are allowed.", name, len(raw), maxOverrideLen))
	}
	if !hasDefault || def.IsNull() {
		return cty.StringVal(raw)
	}
	switch def.Type() {
	case cty.String:
		return cty.StringVal(raw)
	case cty.Number:
		n, err := cty.ParseNumberVal(strings.TrimSpace(raw))
		if err != nil || !saneNumber(strings.TrimSpace(raw)) {
			return bad(fmt.Sprintf("-var %s=%s: variable %q has a number default, and %q is not a number.", name, raw, name, raw))
		}
		return n
	case cty.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return bad(fmt.Sprintf("-var %s=%s: variable %q has a bool default; write true or false.", name, raw, name))
		}
		return cty.BoolVal(b)
	default:
		return bad(fmt.Sprintf("-var %s: variable %q has a %s default, which cannot be set from the command line; only string, number and bool variables can.", name, name, def.Type().FriendlyName()))
	}
}

// valueSize approximates the memory a value holds: string bytes plus one per
// element. depth is bounded by the parser's nesting guard.
func valueSize(v cty.Value, depth int) int {
	if v.IsNull() || !v.IsKnown() {
		return 1
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return len(v.AsString())
	case t.IsListType() || t.IsSetType() || t.IsTupleType() || t.IsMapType() || t.IsObjectType():
		n := 1
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			n += valueSize(k, depth+1) + valueSize(e, depth+1)
		}
		return n
	}
	return 1
}
