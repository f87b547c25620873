package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestSetServerGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100)) // restore the test binary's own
	for _, tc := range []struct {
		name string
		env  *string
		want int
	}{
		{"GOGC unset", nil, serverGCPercent},
		{"GOGC set", ptrTo("100"), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv("GOGC", *tc.env)
			} else {
				t.Setenv("GOGC", "")
				unsetenv(t, "GOGC")
			}
			debug.SetGCPercent(100)
			setServerGC()
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}

func ptrTo(s string) *string { return &s }

// unsetenv removes name for the rest of the test (t.Setenv first, so that
// the test framework restores it).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
