package jobs

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMatchersAgreeWithRegexps checks each hand-written matcher against
// the regexp it replaces, on chosen strings and on many random strings
// over the alphabet that matters.
func TestMatchersAgreeWithRegexps(t *testing.T) {
	type matcher interface{ MatchString(string) bool }
	type submatcher interface{ FindStringSubmatch(string) []string }
	chosen := []string{"", "a", "job-1.x_y", strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("b", 128),
		strings.Repeat("b", 129), "_x", "9x", "x9", "a b", "é", "1", "90", "1:2", "1:2:3", "1:2:3:4", "1-2", "1-2:3:4",
		"1-2:3:4:5", "-1", "1-", "1::2", ":1", "1:", "1-2-3", "12345678901234567890123", "64GiB", "1.5 GiB", "1.",
		".5", "1.5.5", "64 G\t", "64\tG", "64G ", "1e3", "0x10", "10 k", " 10k"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ_09.-: \tGi"
	for range 20000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		chosen = append(chosen, string(b))
	}
	for _, c := range []struct {
		name string
		re   string
		m    matcher
	}{
		{"jobNameRE", `^[A-Za-z0-9_.-]{1,128}$`, jobNameRE},
		{"labelRE", `^[A-Za-z0-9_.-]{1,64}$`, labelRE},
		{"envKeyRE", `^[A-Za-z_][A-Za-z0-9_]*$`, envKeyRE},
	} {
		re := regexp.MustCompile(c.re)
		for _, s := range chosen {
			if got, want := c.m.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, regexp %s says %v", c.name, s, got, c.re, want)
			}
		}
	}
	for _, c := range []struct {
		name string
		re   string
		m    submatcher
	}{
		{"slurmDuration", `^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$`, slurmDuration},
		{"sizeRE", `^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`, sizeRE},
	} {
		re := regexp.MustCompile(c.re)
		for _, s := range chosen {
			if got, want := c.m.FindStringSubmatch(s), re.FindStringSubmatch(s); !slices.Equal(got, want) {
				t.Errorf("%s(%q) = %q, regexp %s says %q", c.name, s, got, c.re, want)
			}
		}
	}
}
