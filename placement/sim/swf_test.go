package sim

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedTrace finds a shipped trace relative to this package (the shared
// folder sits beside the repository) or skips the test.
func sharedTrace(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "traces", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("trace %s not found (%v); the shipped traces live in ../shared/traces beside the repository", name, err)
	}
	return p
}

func TestReadSWFShippedTraces(t *testing.T) {
	cases := []struct {
		file               string
		jobs               int
		maxProcs, maxNodes int
		first              Record
	}{
		{"lublin_256.swf", 10000, 0, 256, Record{Line: 8, JobID: 1, Submit: 5094, Wait: -1, Run: 12072, AllocProcs: 16, AvgCPU: -1, UsedMemKB: -1, ReqProcs: -1, ReqTime: -1, ReqMemKB: -1, Status: 1, User: -1, Group: -1, Executable: -1, Queue: 0, Partition: -1, Preceding: -1, ThinkTime: -1}},
		{"NASA-iPSC-1993-3.1-cln.swf.gz", 18239, 128, 128, Record{Line: 33, JobID: 1, Submit: 0, Wait: -1, Run: 1451, AllocProcs: 128, AvgCPU: -1, UsedMemKB: -1, ReqProcs: -1, ReqTime: -1, ReqMemKB: -1, Status: -1, User: 1, Group: 1, Executable: -1, Queue: -1, Partition: -1, Preceding: -1, ThinkTime: -1}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			tr, err := ReadSWFFile(sharedTrace(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Jobs) != c.jobs {
				t.Errorf("%d jobs, want %d", len(tr.Jobs), c.jobs)
			}
			if tr.Header.MaxProcs != c.maxProcs || tr.Header.MaxNodes != c.maxNodes {
				t.Errorf("header %+v, want MaxProcs %d MaxNodes %d", tr.Header, c.maxProcs, c.maxNodes)
			}
			if tr.Jobs[0] != c.first {
				t.Errorf("first job\n got %+v\nwant %+v", tr.Jobs[0], c.first)
			}
		})
	}
}

func TestReadSWF(t *testing.T) {
	const good = "; Version: 2\n; MaxProcs: 64\n;MaxNodes:32\n; Note: free text: with colons\n\n" +
		"1 0 5 100 4 -1 -1 4 200 -1 1 3 1 -1 1 -1 -1 -1\n" +
		"  2\t10 -1 50.6 2 12.25 -1 -1 -1 -1 1 3 1 -1 1 -1 -1 -1  \n"
	cases := []struct {
		name    string
		in      string
		gz      bool
		jobs    int
		wantErr string
	}{
		{"plain", good, false, 2, ""},
		{"gzip", good, true, 2, ""},
		{"empty", "", false, 0, ""},
		{"header-only", "; MaxProcs: 8\n", false, 0, ""},
		{"short-line", good + "3 20 -1 10 1\n", false, 0, "line 8: 5 fields, want at least 18"},
		{"long-line", good + "3 20 -1 10 1 -1 -1 -1 -1 -1 1 3 1 -1 1 -1 -1 -1 7 x\n", false, 3, ""},
		{"not-a-number", good + "3 20 -1 ten 1 -1 -1 -1 -1 -1 1 3 1 -1 1 -1 -1 -1\n", false, 0, `line 8: field 4 (run time): "ten" is not a number`},
		{"nan", "3 20 -1 NaN 1 -1 -1 -1 -1 -1 1 3 1 -1 1 -1 -1 -1\n", false, 0, "line 1: field 4"},
		{"bad-gzip", "\x1f\x8bnot gzip at all", false, 0, "gzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			if c.gz {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write(in)
				zw.Close()
				in = b.Bytes()
			}
			tr, err := ReadSWF(bytes.NewReader(in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tr.Jobs) != c.jobs {
				t.Fatalf("%d jobs, want %d", len(tr.Jobs), c.jobs)
			}
		})
	}
	tr, err := ReadSWF(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Header != (Header{MaxProcs: 64, MaxNodes: 32}) {
		t.Errorf("header %+v", tr.Header)
	}
	if tr.ExtraLines != 0 {
		t.Errorf("extra lines %d in an 18-column file", tr.ExtraLines)
	}
	long, err := ReadSWF(strings.NewReader(good + "3 20 -1 10 1 -1 -1 -1 -1 -1 1 3 1 -1 1 -1 -1 -1 7 x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if long.ExtraLines != 1 || long.ExtraFields != 20 || long.Jobs[2].ThinkTime != -1 || long.Jobs[2].Run != 10 {
		t.Errorf("20-column line: extra %d lines, %d fields, job %+v", long.ExtraLines, long.ExtraFields, long.Jobs[2])
	}
	if j := tr.Jobs[1]; j.Line != 7 || j.Run != 51 || j.AvgCPU != 12 || j.ReqTime != -1 {
		t.Errorf("second job %+v: want line 7, run 51 (rounded), avg CPU 12", j)
	}
}

func TestReadSWFFileErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.swf")
	os.WriteFile(p, []byte("1 2 3\n"), 0o644)
	_, err := ReadSWFFile(p)
	if err == nil || !strings.Contains(err.Error(), "bad.swf: line 1") {
		t.Fatalf("err = %v, want file and line", err)
	}
	if _, err := ReadSWFFile(filepath.Join(t.TempDir(), "missing.swf")); err == nil {
		t.Fatal("missing file: want an error")
	}
}
