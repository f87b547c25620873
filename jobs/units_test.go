package jobs

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"4h", 4 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"1.5h", 90 * time.Minute, false},
		{"45s", 45 * time.Second, false},
		{" 4h ", 4 * time.Hour, false},
		{"30", 30 * time.Minute, false},                   // MM
		{"0", 0, false},                                   // bounds are the caller's business
		{"90:30", 90*time.Minute + 30*time.Second, false}, // MM:SS, minutes unbounded
		{"01:02:03", time.Hour + 2*time.Minute + 3*time.Second, false},
		{"48:00:00", 48 * time.Hour, false},
		{"1-02", 26 * time.Hour, false},
		{"1-02:30", 26*time.Hour + 30*time.Minute, false},
		{"1-02:00:00", 26 * time.Hour, false},
		{"365-00:00:00", 365 * 24 * time.Hour, false},
		{"", 0, true},
		{"-4h", 0, true},
		{"-5", 0, true},
		{"4 hours", 0, true},
		{"2d", 0, true},
		{"1-24:00:00", 0, true}, // hours after a day must be < 24
		{"01:60:00", 0, true},
		{"01:00:60", 0, true},
		{"10:75", 0, true}, // seconds bounded in MM:SS
		{"1:2:3:4", 0, true},
		{"99999999999999999999", 0, true},
		{"2147483647-00:00:00", 0, true}, // overflows time.Duration
		{"h", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  string
	}{
		{"64GiB", 64 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"1.5GiB", 3 << 29, ""},
		{"64G", 64 << 30, ""},
		{"100M", 100 << 20, ""},
		{"1024K", 1 << 20, ""},
		{"1T", 1 << 40, ""},
		{"2TiB", 2 << 40, ""},
		{"4096", 4096, ""},
		{"4096B", 4096, ""},
		{"8 GiB", 8 << 30, ""},
		{"8g", 8 << 30, ""},
		{"0.5K", 512, ""},
		{"1.1K", 1126, ""}, // fractions of a byte are dropped
		{"0", 0, ""},
		{"64GB", 0, `unknown unit "GB": use KiB, MiB, GiB, TiB (or K, M, G, T)`},
		{"1PiB", 0, `unknown unit "PiB"`},
		{"", 0, "empty size"},
		{"-1G", 0, "negative"},
		{"1e9", 0, "invalid size"},
		{"G", 0, "invalid size"},
		{"1..5G", 0, "invalid size"},
		{"9000000T", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSize(%q) error = %v; want one containing %q", tc.in, err, tc.err)
		}
	}
}

func TestExpandPattern(t *testing.T) {
	cases := []struct {
		pattern string
		index   int
		want    string
	}{
		{"hpc-%j.out", -1, "hpc-42.out"},
		{"%x-%j-%a.out", 7, "train-42-7.out"},
		{"%x-%j-%a.out", 0, "train-42-0.out"},
		{"%x-%j-%a.out", -1, "train-42-.out"}, // not an array task
		{"/home/%u/%x.log", -1, "/home/alice/train.log"},
		{"100%%-%j", -1, "100%-42"},
		{"%z%j", -1, "%z42"}, // unknown sequences stay
		{"end%", -1, "end%"},
		{"plain", -1, "plain"},
		{"%%j", -1, "%j"},
	}
	for _, tc := range cases {
		if got := ExpandPattern(tc.pattern, 42, tc.index, "train", "alice"); got != tc.want {
			t.Errorf("ExpandPattern(%q, index %d) = %q, want %q", tc.pattern, tc.index, got, tc.want)
		}
	}
}

func TestNormaliseSignal(t *testing.T) {
	for in, want := range map[string]string{"SIGUSR1": "SIGUSR1", "usr1": "SIGUSR1", "USR2": "SIGUSR2", "sigterm": "SIGTERM", " TERM ": "SIGTERM"} {
		if got, err := normaliseSignal(in); err != nil || got != want {
			t.Errorf("normaliseSignal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "SIG", "KILL", "SIGSTOP", "10", "USR3"} {
		if got, err := normaliseSignal(in); err == nil {
			t.Errorf("normaliseSignal(%q) = %q, want an error", in, got)
		}
	}
}
