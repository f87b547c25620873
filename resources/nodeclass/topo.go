package nodeclass

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hpc-sched/hpc/resources"
)

// Matrix is a GPU link matrix read from `nvidia-smi topo -m` output.
type Matrix struct {
	Links [][]resources.Link // n×n, LinkNone on the diagonal, symmetric
	// NUMA holds each GPU's "NUMA Affinity" column, -1 where the paste has
	// none or it is not a single node (N/A, a range).
	NUMA []int
}

// topoError is a problem at a place in the pasted text: Line is 0-based
// within the text, Col 0-based in bytes within that line.
type topoError struct {
	Line, Col int
	Msg       string
}

func (e *topoError) Error() string { return e.Msg }

var gpuName = regexp.MustCompile(`^GPU(\d+)$`)

// linkCodes maps nvidia-smi's legend to the project's link levels. SOC is
// what drivers before 384 printed for SYS.
var linkCodes = map[string]resources.Link{
	"SYS":  resources.LinkSystem,
	"SOC":  resources.LinkSystem,
	"NODE": resources.LinkNode,
	"PHB":  resources.LinkHostBridge,
	"PXB":  resources.LinkMultiSwitch,
	"PIX":  resources.LinkSingleSwitch,
}

const wantCodes = "X, NV<n>, PIX, PXB, PHB, NODE or SYS"

// ParseLink converts one cell of `nvidia-smi topo -m` (NV12, PIX, ...)
// to a link level. "X" (the GPU itself) is LinkNone.
func ParseLink(cell string) (resources.Link, error) {
	if cell == "X" {
		return resources.LinkNone, nil
	}
	if l, ok := linkCodes[cell]; ok {
		return l, nil
	}
	if n, ok := strings.CutPrefix(cell, "NV"); ok {
		if k, err := strconv.Atoi(n); err == nil && k > 0 && k < 1000 {
			return resources.LinkNVLink, nil
		}
	}
	return resources.LinkNone, fmt.Errorf("unknown link %q: want %s", cell, wantCodes)
}

// isCell tells a row's first cell from a header's second column name.
func isCell(s string) bool {
	_, err := ParseLink(s)
	return err == nil
}

// field is one whitespace-separated word of a line and its byte column.
type field struct {
	text string
	col  int
}

func fields(line string) []field {
	var out []field
	start := -1
	for i := 0; i <= len(line); i++ {
		space := i == len(line) || line[i] == ' ' || line[i] == '\t' || line[i] == '\r'
		switch {
		case space && start >= 0:
			out = append(out, field{line[start:i], start})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return out
}

// ParseTopology reads the GPU-to-GPU part of `nvidia-smi topo -m` output
// as printed: the header line, NIC columns and rows, the CPU and NUMA
// affinity columns and the legend are allowed and skipped. Only rows whose
// first word is GPU<n> count; they must be GPU0, GPU1, ... in order, and
// their first n cells are the GPU columns (nvidia-smi always prints GPUs
// before NICs). Cells are separated by tabs or spaces, so a paste whose
// tabs became spaces still reads.
func ParseTopology(text string) (Matrix, error) {
	lines := strings.Split(text, "\n")
	type row struct {
		line  int
		cells []field
	}
	var rows []row
	header, headerLine := []field(nil), -1
	for i, l := range lines {
		f := fields(l)
		if len(f) == 0 {
			continue
		}
		if headerLine < 0 && len(rows) == 0 && f[0].text == "GPU0" && (len(f) == 1 || !isCell(f[1].text)) {
			header, headerLine = f, i
			continue
		}
		m := gpuName.FindStringSubmatch(f[0].text)
		if m == nil {
			continue // NIC rows, legend, blank lines
		}
		if want := fmt.Sprintf("GPU%d", len(rows)); f[0].text != want {
			return Matrix{}, &topoError{i, f[0].col, fmt.Sprintf("row %s out of order: expected %s (paste the rows as nvidia-smi prints them)", f[0].text, want)}
		}
		rows = append(rows, row{i, f})
	}
	n := len(rows)
	if n == 0 {
		return Matrix{}, &topoError{0, 0, "no GPU rows: paste the output of `nvidia-smi topo -m`, whose rows start GPU0, GPU1, ..."}
	}
	if header != nil {
		for j := 0; j < n; j++ {
			want := fmt.Sprintf("GPU%d", j)
			if j >= len(header) || header[j].text != want {
				col := 0
				if j < len(header) {
					col = header[j].col
				}
				return Matrix{}, &topoError{headerLine, col, fmt.Sprintf("header names %d GPU columns but there are %d GPU rows; the header must list GPU0 to GPU%d first", countGPUCols(header), n, n-1)}
			}
		}
	}
	mat := Matrix{Links: make([][]resources.Link, n), NUMA: make([]int, n)}
	numaCol := -1 // index among the cells after the link cells
	if header != nil {
		numaCol = affinityIndex(header, n)
	}
	for i, r := range rows {
		cells := r.cells[1:]
		if len(cells) < n {
			return Matrix{}, &topoError{r.line, r.cells[len(r.cells)-1].col, fmt.Sprintf("row GPU%d has %d cells, want at least %d (one per GPU)", i, len(cells), n)}
		}
		mat.Links[i] = make([]resources.Link, n)
		for j := 0; j < n; j++ {
			c := cells[j]
			l, err := ParseLink(c.text)
			if err != nil {
				return Matrix{}, &topoError{r.line, c.col, fmt.Sprintf("GPU%d to GPU%d: %v", i, j, err)}
			}
			if (i == j) != (c.text == "X") {
				msg := fmt.Sprintf("GPU%d to GPU%d is X, but X marks a GPU's own cell only", i, j)
				if i == j {
					msg = fmt.Sprintf("GPU%d to itself must be X, not %q", i, c.text)
				}
				return Matrix{}, &topoError{r.line, c.col, msg}
			}
			mat.Links[i][j] = l
		}
		mat.NUMA[i] = -1
		if rest := cells[n:]; numaCol >= 0 && numaCol < len(rest) {
			if v, err := strconv.Atoi(rest[numaCol].text); err == nil && v >= 0 {
				mat.NUMA[i] = v
			}
		}
	}
	for i, r := range rows {
		for j := 0; j < i; j++ {
			// Text, not levels: NV4 against NV2 is a paste gone wrong too.
			if r.cells[1+j].text != rows[j].cells[1+i].text {
				return Matrix{}, &topoError{r.line, r.cells[1+j].col, fmt.Sprintf("GPU%d to GPU%d is %s but GPU%d to GPU%d is %s; the matrix must be symmetric",
					i, j, r.cells[1+j].text, j, i, rows[j].cells[1+i].text)}
			}
		}
	}
	return mat, nil
}

func countGPUCols(header []field) int {
	n := 0
	for _, h := range header {
		if gpuName.MatchString(h.text) {
			n++
		}
	}
	return n
}

// affinityIndex finds which of the words after a row's link cells is the
// NUMA affinity: the header's words after the GPU columns name NIC columns
// (one word each, also present in rows) and then "CPU Affinity",
// "NUMA Affinity" (two words each, one value each). -1 when there is none.
func affinityIndex(header []field, n int) int {
	idx := 0
	for k := n; k < len(header); k++ {
		switch header[k].text {
		case "CPU":
			idx++ // CPU Affinity: one value
			k++   // skip "Affinity"
		case "NUMA":
			return idx
		default:
			if gpuName.MatchString(header[k].text) {
				return -1 // more GPU columns than rows: refused earlier
			}
			idx++ // a NIC column
		}
	}
	return -1
}
