package sim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Header is what the `;` comment lines of an SWF file say about the
// machine. Zero means the header did not give the value.
type Header struct {
	MaxProcs int
	MaxNodes int
	MaxJobs  int
}

// Record is one job line: the 18 fields of the Standard Workload Format in
// their order. -1 means unknown, as in the file. Times are seconds; the
// few fields that real logs sometimes write with a fraction (average CPU
// time, memory) are rounded to the nearest integer, as nothing here needs
// sub-second precision.
type Record struct {
	Line       int   // 1-based line in the file, for messages
	JobID      int64 // field 1
	Submit     int64 // field 2
	Wait       int64 // field 3
	Run        int64 // field 4
	AllocProcs int64 // field 5
	AvgCPU     int64 // field 6
	UsedMemKB  int64 // field 7
	ReqProcs   int64 // field 8
	ReqTime    int64 // field 9
	ReqMemKB   int64 // field 10
	Status     int64 // field 11
	User       int64 // field 12
	Group      int64 // field 13
	Executable int64 // field 14
	Queue      int64 // field 15
	Partition  int64 // field 16
	Preceding  int64 // field 17
	ThinkTime  int64 // field 18
}

// Trace is a whole SWF file in file order.
type Trace struct {
	Header Header
	Jobs   []Record
	// ExtraLines counts job lines with more than 18 fields and
	// ExtraFields is the most fields one had: production logs append site
	// columns, which are read past and ignored. The command says so once.
	ExtraLines  int
	ExtraFields int
}

// swfFields is the fixed number of fields of a job line.
const swfFields = 18

// ReadSWFFile reads an SWF file, gunzipping it when it starts with the
// gzip magic bytes (so "x.swf.gz" and a gzip without the suffix both work).
func ReadSWFFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadSWF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ReadSWF parses a Standard Workload Format stream, plain or gzip. Errors
// name the line: "line 12: field 4 (run time): ..." so a broken log can be
// fixed by hand.
func ReadSWF(r io.Reader) (*Trace, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	t := &Trace{}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if text[0] == ';' {
			parseHeaderLine(&t.Header, string(text[1:]))
			continue
		}
		rec, nf, err := parseRecord(string(text), line)
		if err != nil {
			return nil, err
		}
		if nf > swfFields {
			t.ExtraLines++
			t.ExtraFields = max(t.ExtraFields, nf)
		}
		t.Jobs = append(t.Jobs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return t, nil
}

// parseHeaderLine picks the machine size out of "; MaxProcs: 128". Other
// header lines are free text (notes, queue tables) and are ignored, as is
// a known key with a value that is not a number: headers are advisory.
func parseHeaderLine(h *Header, s string) {
	key, val, ok := strings.Cut(s, ":")
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(val))
	if err != nil {
		return
	}
	switch strings.TrimSpace(key) {
	case "MaxProcs":
		h.MaxProcs = n
	case "MaxNodes":
		h.MaxNodes = n
	case "MaxJobs":
		h.MaxJobs = n
	}
}

var fieldNames = [swfFields]string{
	"job number", "submit time", "wait time", "run time", "allocated processors",
	"average CPU time", "used memory", "requested processors", "requested time",
	"requested memory", "status", "user id", "group id", "executable",
	"queue", "partition", "preceding job", "think time",
}

// parseRecord reads one job line and returns how many fields it had.
// Fields past the 18th are not looked at: their meaning is the site's.
func parseRecord(s string, line int) (Record, int, error) {
	f := strings.Fields(s)
	if len(f) < swfFields {
		return Record{}, len(f), fmt.Errorf("line %d: %d fields, want at least %d (a job line is 18 numbers; comments start with ';')", line, len(f), swfFields)
	}
	var v [swfFields]int64
	for i, x := range f[:swfFields] {
		n, err := parseNum(x)
		if err != nil {
			return Record{}, len(f), fmt.Errorf("line %d: field %d (%s): %q is not a number", line, i+1, fieldNames[i], x)
		}
		v[i] = n
	}
	return Record{
		Line: line, JobID: v[0], Submit: v[1], Wait: v[2], Run: v[3], AllocProcs: v[4],
		AvgCPU: v[5], UsedMemKB: v[6], ReqProcs: v[7], ReqTime: v[8], ReqMemKB: v[9],
		Status: v[10], User: v[11], Group: v[12], Executable: v[13], Queue: v[14],
		Partition: v[15], Preceding: v[16], ThinkTime: v[17],
	}, len(f), nil
}

// parseNum reads an integer, or a decimal that some archive logs use for
// CPU time and memory, rounded to the nearest integer.
func parseNum(x string) (int64, error) {
	if n, err := strconv.ParseInt(x, 10, 64); err == nil {
		return n, nil
	}
	fl, err := strconv.ParseFloat(x, 64)
	if err != nil || math.IsNaN(fl) || math.IsInf(fl, 0) || math.Abs(fl) > 1e18 {
		return 0, fmt.Errorf("not a number")
	}
	return int64(math.Round(fl)), nil
}
