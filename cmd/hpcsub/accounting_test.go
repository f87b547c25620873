package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Mistakes in the accounting commands are usage errors: exit 2, one line,
// and nothing reaches the server.
func TestAccountingUsageErrors(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"history", "--state", "running"}, "state RUNNING is not an end state"},
		{[]string{"history", "--until", "soon"}, `invalid --until "soon"`},
		{[]string{"history", "--since", "1d", "--until", "2d"}, "is not after --since"},
		{[]string{"history", "--limit", "-1"}, "--limit must be 0 (all) or more"},
		{[]string{"history", "extra"}, `unexpected argument "extra"`},
		{[]string{"usage", "--by", "planet"}, `--by must be account or user, not "planet"`},
		{[]string{"usage", "--since", "yesterday"}, `invalid --since "yesterday"`},
		{[]string{"eff"}, "hpcsub eff: missing job ID"},
		{[]string{"eff", "1", "2"}, "one job ID at a time"},
		{[]string{"eff", "x"}, `invalid job id "x"`},
		{[]string{"priority", "1", "2"}, "one job ID at a time"},
		{[]string{"priority", "0"}, `invalid job id "0"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", f.addr}, tt.args...)...)
			r.checkOneLine(t, 2, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestAccountingNoDaemonExit1(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "missing.sock")
	for _, args := range [][]string{{"history"}, {"usage"}, {"eff", "1"}, {"priority"}, {"priority", "1"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := hpcsub(append([]string{"--addr", addr}, args...)...)
			r.checkOneLine(t, 1, "no hpcd is running at "+addr)
		})
	}
}
