// Package nodeclass reads node-class files: HCL that describes the kinds of
// node a cluster has (CPUs, memory, features, GPUs with their model,
// memory and the link matrix exactly as `nvidia-smi topo -m` prints it)
// and how many of each, and expands them into concrete node descriptions.
// Virtual agents and the simulator use it to stand in for real hardware.
package nodeclass

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/hpc-sched/hpc/jobs"
	"github.com/hpc-sched/hpc/resources"
)

// Bounds keep a mistyped number from making a million nodes or a node no
// placer can hold.
const (
	MaxFileSize   = 1 << 20
	MaxNodes      = 100_000 // over all classes
	MaxCPUs       = 4096    // per node
	MaxGPUs       = 64      // per node
	maxNameLen    = 48
	maxFeatures   = 64
	maxFeatureLen = 64
)

// Class is one kind of node and how many the cluster has.
type Class struct {
	Name     string
	Count    int
	CPUs     int
	Memory   int64 // bytes
	Features []string
	GPU      *GPUs // nil: no GPUs
}

// GPUs describes the identical GPUs of a class.
type GPUs struct {
	Model  string
	Memory int64 // bytes, per GPU
	Count  int
	// Links is Count×Count from the pasted topology; nil when the class
	// gives none (the placer then treats every pair as SYS).
	Links [][]resources.Link
	NUMA  []int // per GPU from the paste's NUMA Affinity column, -1 unknown; nil without a paste
}

// GPU is one GPU of an expanded node.
type GPU struct {
	Index    int
	Model    string
	Memory   int64
	NUMANode int // -1 when unknown
}

// Node is one concrete node of a class.
type Node struct {
	Name     string // <class>-0001, <class>-0002, ...
	Class    string
	CPUs     int
	Memory   int64
	Features []string
	GPUs     []GPU
	Links    [][]resources.Link // nil when the class gives no topology
}

// File is a parsed node-class file.
type File struct {
	Classes []Class // in file order
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// Error holds every problem found in a file; each line reads
// "file:line:col: summary: detail", as the job file's errors do.
type Error struct {
	Diags hcl.Diagnostics
}

func (e *Error) Error() string { return strings.Join(e.Lines(), "\n") }

// Lines returns one line per diagnostic, formatted as jobs.Error's are.
func (e *Error) Lines() []string { return (&jobs.Error{Diags: e.Diags}).Lines() }

// ReadFile reads and parses a node-class file.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read node-class file: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read node-class file %s: %w", path, err)
	}
	return Parse(path, src)
}

// hclClass and hclGPU are the file's shape for gohcl; Parse checks and
// converts them.
type hclClass struct {
	Name     string   `hcl:"name,label"`
	Count    int      `hcl:"count"`
	CPUs     int      `hcl:"cpus"`
	Memory   string   `hcl:"memory"`
	Features []string `hcl:"features,optional"`
	GPUs     []hclGPU `hcl:"gpu,block"`
}

type hclGPU struct {
	Model    string         `hcl:"model"`
	Memory   string         `hcl:"memory"`
	Count    *int           `hcl:"count,optional"`
	Topology hcl.Expression `hcl:"topology,optional"`
}

type hclFile struct {
	Classes []hclClass `hcl:"class,block"`
}

// Parse parses a node-class file's source. On any problem it returns nil
// and an *Error with every diagnostic found.
func Parse(filename string, src []byte) (*File, error) {
	fail := func(diags hcl.Diagnostics) (*File, error) {
		sort.SliceStable(diags, func(i, j int) bool {
			a, b := diags[i].Subject, diags[j].Subject
			if a == nil || b == nil {
				return a == nil && b != nil
			}
			return a.Start.Byte < b.Start.Byte
		})
		return nil, &Error{Diags: diags}
	}
	start := &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	if len(src) > MaxFileSize {
		return fail(hcl.Diagnostics{errAt(start, "Node-class file too large", fmt.Sprintf("The file is over %d bytes.", MaxFileSize))})
	}
	p := hclparse.NewParser()
	file, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return fail(diags)
	}
	var raw hclFile
	if d := gohcl.DecodeBody(file.Body, nil, &raw); d.HasErrors() {
		return fail(d)
	}
	out := &File{}
	seen := map[string]hcl.Range{}
	total := 0
	// gohcl decodes blocks in file order, so the i-th class block is
	// raw.Classes[i]; its syntax gives the positions for diagnostics.
	blocks := classBlocks(file.Body)
	for i, rc := range raw.Classes {
		c, d := convertClass(rc, blocks[i], src)
		diags = append(diags, d...)
		label := blocks[i].LabelRanges[0]
		if prev, dup := seen[rc.Name]; dup {
			diags = append(diags, errAt(&label, "Duplicate class", fmt.Sprintf("Class %q is already defined at %s; give each class its own name.", rc.Name, prev)))
			continue
		}
		seen[rc.Name] = label
		if !nameRE.MatchString(rc.Name) || len(rc.Name) > maxNameLen {
			diags = append(diags, errAt(&label, "Invalid class name", fmt.Sprintf("Class names make node names (%s-0001): use letters, digits and inner dashes, at most %d characters.", rc.Name, maxNameLen)))
		}
		total += c.Count
		out.Classes = append(out.Classes, c)
	}
	if total > MaxNodes {
		diags = append(diags, errAt(start, "Too many nodes", fmt.Sprintf("The classes add up to %d nodes; at most %d are allowed.", total, MaxNodes)))
	}
	if len(raw.Classes) == 0 {
		diags = append(diags, errAt(start, "No classes", `A node-class file holds one or more class "name" { count = ..., cpus = ..., memory = "..." } blocks.`))
	}
	if diags.HasErrors() {
		return fail(diags)
	}
	return out, nil
}

// classBlocks lists the file's class blocks in order. ParseHCL always
// yields native syntax.
func classBlocks(body hcl.Body) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.(*hclsyntax.Body).Blocks {
		if b.Type == "class" {
			out = append(out, b)
		}
	}
	return out
}

func errAt(r *hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r}
}

// attrRange is where attribute name's value is written in body, or the
// body's range when it is absent.
func attrRange(b *hclsyntax.Body, name string) *hcl.Range {
	if a, ok := b.Attributes[name]; ok {
		return a.Expr.Range().Ptr()
	}
	return b.SrcRange.Ptr()
}

func convertClass(rc hclClass, blk *hclsyntax.Block, src []byte) (Class, hcl.Diagnostics) {
	body := blk.Body
	var diags hcl.Diagnostics
	c := Class{Name: rc.Name, Count: rc.Count, CPUs: rc.CPUs, Features: rc.Features}
	if rc.Count < 1 || rc.Count > MaxNodes {
		diags = append(diags, errAt(attrRange(body, "count"), "Invalid count", fmt.Sprintf("count is %d; a class has 1 to %d nodes.", rc.Count, MaxNodes)))
	}
	if rc.CPUs < 1 || rc.CPUs > MaxCPUs {
		diags = append(diags, errAt(attrRange(body, "cpus"), "Invalid cpus", fmt.Sprintf("cpus is %d; a node has 1 to %d CPUs.", rc.CPUs, MaxCPUs)))
	}
	var err error
	if c.Memory, err = positiveSize(rc.Memory); err != nil {
		diags = append(diags, errAt(attrRange(body, "memory"), "Invalid memory", err.Error()))
	}
	diags = append(diags, checkFeatures(rc.Features, attrRange(body, "features"))...)
	var gblocks []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == "gpu" {
			gblocks = append(gblocks, b)
		}
	}
	if len(gblocks) > 1 {
		diags = append(diags, errAt(gblocks[1].TypeRange.Ptr(), "Duplicate gpu block", "A class has one gpu block; nodes with two GPU models are two classes."))
	}
	if len(rc.GPUs) > 0 {
		g, d := convertGPU(rc.GPUs[0], gblocks[0], src)
		diags = append(diags, d...)
		c.GPU = g
	}
	return c, diags
}

func positiveSize(s string) (int64, error) {
	n, err := jobs.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("size %q must be more than zero", s)
	}
	return n, nil
}

func checkFeatures(features []string, r *hcl.Range) hcl.Diagnostics {
	if len(features) > maxFeatures {
		return hcl.Diagnostics{errAt(r, "Too many features", fmt.Sprintf("A class has at most %d features.", maxFeatures))}
	}
	seen := map[string]bool{}
	for _, f := range features {
		switch {
		case f == "" || len(f) > maxFeatureLen || strings.ContainsAny(f, " \t\n,|&"):
			return hcl.Diagnostics{errAt(r, "Invalid feature", fmt.Sprintf("Feature %q: use a word of at most %d characters without spaces, commas, | or &.", f, maxFeatureLen))}
		case seen[f]:
			return hcl.Diagnostics{errAt(r, "Duplicate feature", fmt.Sprintf("Feature %q is listed twice.", f))}
		}
		seen[f] = true
	}
	return nil
}

func convertGPU(rg hclGPU, blk *hclsyntax.Block, src []byte) (*GPUs, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	g := &GPUs{Model: strings.TrimSpace(rg.Model)}
	if g.Model == "" {
		diags = append(diags, errAt(attrRange(blk.Body, "model"), "Missing GPU model", `Give the model as NVML names it, e.g. "NVIDIA A100-SXM4-80GB".`))
	}
	var err error
	if g.Memory, err = positiveSize(rg.Memory); err != nil {
		diags = append(diags, errAt(attrRange(blk.Body, "memory"), "Invalid GPU memory", err.Error()))
	}
	if rg.Count != nil {
		g.Count = *rg.Count
		if g.Count < 1 || g.Count > MaxGPUs {
			diags = append(diags, errAt(attrRange(blk.Body, "count"), "Invalid GPU count", fmt.Sprintf("count is %d; a node has 1 to %d GPUs (drop the gpu block for none).", g.Count, MaxGPUs)))
			return g, diags
		}
	}
	topo, ok := blk.Body.Attributes["topology"]
	if !ok {
		if rg.Count == nil {
			diags = append(diags, errAt(blk.Body.SrcRange.Ptr(), "Missing GPU count", "Give count, or topology (the output of `nvidia-smi topo -m`) from which the count is read."))
		}
		return g, diags
	}
	var text string
	if d := gohcl.DecodeExpression(topo.Expr, nil, &text); d.HasErrors() {
		return g, append(diags, d...)
	}
	m, err := ParseTopology(text)
	if err != nil {
		r := topo.Expr.Range()
		if te, ok := err.(*topoError); ok {
			r = locate(src, topo.Expr.Range(), text, te.Line, te.Col)
		}
		return g, append(diags, errAt(&r, "Invalid GPU topology", err.Error()))
	}
	if rg.Count != nil && len(m.Links) != g.Count {
		diags = append(diags, errAt(attrRange(blk.Body, "count"), "GPU count does not match topology",
			fmt.Sprintf("count is %d but the topology has %d GPU rows.", g.Count, len(m.Links))))
	}
	if len(m.Links) > MaxGPUs {
		diags = append(diags, errAt(topo.Expr.Range().Ptr(), "Too many GPUs", fmt.Sprintf("The topology has %d GPUs; a node has at most %d.", len(m.Links), MaxGPUs)))
	}
	g.Count, g.Links, g.NUMA = len(m.Links), m.Links, m.NUMA
	return g, diags
}

// locate turns a position in the topology's text into a position in the
// file. A heredoc's lines appear verbatim in the source, so each text line
// is found there in order; when one is not (a quoted string with \n
// escapes), the whole expression is blamed.
func locate(src []byte, r hcl.Range, text string, line, col int) hcl.Range {
	if r.Start.Byte < 0 || r.End.Byte > len(src) || r.Start.Byte > r.End.Byte {
		return r
	}
	body := string(src[r.Start.Byte:r.End.Byte])
	lines := strings.Split(text, "\n")
	off := 0
	for i := 0; i <= line && i < len(lines); i++ {
		k := strings.Index(body[off:], lines[i])
		if k < 0 {
			return r
		}
		if i == line {
			pos := r.Start.Byte + off + k + col
			return posRange(src, r.Filename, pos)
		}
		off += k + len(lines[i])
	}
	return r
}

// posRange is a one-byte range at byte offset pos of src, with the line
// and column counted as hcl does (columns in characters, 1-based).
func posRange(src []byte, filename string, pos int) hcl.Range {
	line, col := 1, 1
	for _, ch := range string(src[:pos]) {
		if ch == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	p := hcl.Pos{Line: line, Column: col, Byte: pos}
	return hcl.Range{Filename: filename, Start: p, End: p}
}

// Nodes expands every class into its nodes, named <class>-0001 upwards
// (more digits when a class has over 9,999 nodes), in file order.
func (f *File) Nodes() []Node {
	var out []Node
	for _, c := range f.Classes {
		width := max(4, len(fmt.Sprint(c.Count)))
		for i := 1; i <= c.Count; i++ {
			out = append(out, c.node(fmt.Sprintf("%s-%0*d", c.Name, width, i)))
		}
	}
	return out
}

// node builds one node of c. Nodes share no slices, so a caller may
// change one (drain a GPU in a test) without touching the others.
func (c Class) node(name string) Node {
	n := Node{Name: name, Class: c.Name, CPUs: c.CPUs, Memory: c.Memory, Features: append([]string(nil), c.Features...)}
	if c.GPU == nil {
		return n
	}
	for i := 0; i < c.GPU.Count; i++ {
		numa := -1
		if c.GPU.NUMA != nil {
			numa = c.GPU.NUMA[i]
		}
		n.GPUs = append(n.GPUs, GPU{Index: i, Model: c.GPU.Model, Memory: c.GPU.Memory, NUMANode: numa})
	}
	if c.GPU.Links != nil {
		n.Links = make([][]resources.Link, len(c.GPU.Links))
		for i, row := range c.GPU.Links {
			n.Links[i] = append([]resources.Link(nil), row...)
		}
	}
	return n
}
