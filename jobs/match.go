package jobs

import "strings"

// Hand-written matchers for the job file's simple patterns. They replace
// regexps that every process importing this package compiled at start:
// `hpcsub submit` is a short-lived process, and compiling five regexps
// was a tenth of its CPU before it did any work. Each matcher says the
// regexp it stands for, and matches exactly what that regexp matches.

// charsetMatcher matches `^[first][rest]*$` of minLen..maxLen bytes.
type charsetMatcher struct {
	minLen, maxLen int
	first, rest    func(c byte) bool
}

func (m charsetMatcher) MatchString(s string) bool {
	if len(s) < m.minLen || len(s) > m.maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		ok := m.rest
		if i == 0 {
			ok = m.first
		}
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// isNameChar is [A-Za-z0-9_.-].
func isNameChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == '-' }

// isIdentStart is [A-Za-z_]; isIdentChar [A-Za-z0-9_].
func isIdentStart(c byte) bool { return isLetter(c) || c == '_' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// allDigits is `\d+` (ASCII digits, at least one).
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// slurmDurationMatcher is `^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$`: its
// FindStringSubmatch returns the whole string and the four groups
// (empty when absent), or nil.
type slurmDurationMatcher struct{}

func (slurmDurationMatcher) FindStringSubmatch(s string) []string {
	m := make([]string, 5)
	m[0] = s
	rest := s
	if d, r, ok := strings.Cut(s, "-"); ok {
		if !allDigits(d) {
			return nil
		}
		m[1], rest = d, r
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return nil
	}
	for i, p := range parts {
		if !allDigits(p) {
			return nil
		}
		m[2+i] = p
	}
	return m
}

// sizeMatcher is `^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`: the number and
// the unit, or nil.
type sizeMatcher struct{}

func (sizeMatcher) FindStringSubmatch(s string) []string {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return nil
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i+1 {
			return nil
		}
		i = j
	}
	num := s[:i]
	for i < len(s) && strings.IndexByte("\t\n\f\r ", s[i]) >= 0 {
		i++
	}
	unit := s[i:]
	for k := 0; k < len(unit); k++ {
		if !isLetter(unit[k]) {
			return nil
		}
	}
	return []string{s, num, unit}
}
