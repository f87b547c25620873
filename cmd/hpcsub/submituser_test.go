package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSubmitChecksUserDirectories: an output directory named by %u is
// checked as the submitting user's (the only case where hpcsub looks the
// user up).
func TestSubmitChecksUserDirectories(t *testing.T) {
	me := currentUser()
	if me == "" {
		t.Skip("no account for this uid")
	}
	f := newFakeServer(t)
	f.submitIDs = []uint64{7}
	dir := t.TempDir()
	t.Chdir(dir)
	job := func(output string) string {
		return "job \"u\" {\n  output = \"" + output + "\"\n  task { command = \"true\" }\n}\n"
	}
	writeFile(t, dir, "missing.hcl", job("out-%u/x.out"))
	r := hpcsub("--addr", f.addr, "submit", "missing.hcl")
	if want := filepath.Join(dir, "out-"+me); r.code == 0 || !strings.Contains(r.stderr, want+" does not exist") {
		t.Errorf("exit %d, stderr %q; want a refusal naming %s", r.code, r.stderr, want)
	}
	if err := os.Mkdir(filepath.Join(dir, "out-"+me), 0o755); err != nil {
		t.Fatal(err)
	}
	r = hpcsub("--addr", f.addr, "submit", "missing.hcl")
	if r.code != 0 || r.stdout != "7\n" {
		t.Errorf("with the directory made: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
