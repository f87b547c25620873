package jobs

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Limits on durations: a job may run at most a year, which is far beyond any
// real allocation but keeps every later time computation clear of overflow.
const maxDuration = 365 * 24 * time.Hour

var slurmDuration slurmDurationMatcher // match.go

// ParseDuration accepts Go-style ("4h", "90m", "1h30m") and Slurm-style
// ("MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS") durations.
// A bare number is minutes, as in Slurm. Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New(`empty duration: write e.g. "4h", "90m" or "1-02:00:00"`)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if m := slurmDuration.FindStringSubmatch(s); m != nil {
		return parseSlurmDuration(s, m)
	}
	if strings.HasSuffix(s, "d") {
		return 0, fmt.Errorf(`unknown unit "d" in duration %q: write days as hours ("48h") or Slurm-style ("2-00:00:00")`, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`invalid duration %q: use Go-style ("4h", "90m", "1h30m") or Slurm-style ("MM", "HH:MM:SS", "D-HH:MM:SS")`, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// parseSlurmDuration interprets the submatches of slurmDuration. Slurm reads
// a dash as days-hours, otherwise one field is minutes, two are MM:SS and
// three are HH:MM:SS.
func parseSlurmDuration(s string, m []string) (time.Duration, error) {
	var fields []string
	for _, f := range m[2:] {
		if f != "" {
			fields = append(fields, f)
		}
	}
	nums := make([]int64, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n > math.MaxInt32 {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		nums[i] = n
	}
	var days, hours, mins, secs int64
	if m[1] != "" {
		d, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || d > math.MaxInt32 {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		days = d
		// D-HH, D-HH:MM, D-HH:MM:SS
		hours = nums[0]
		if len(nums) > 1 {
			mins = nums[1]
		}
		if len(nums) > 2 {
			secs = nums[2]
		}
		if hours > 23 {
			return 0, fmt.Errorf("duration %q: hours must be 0..23 after the day", s)
		}
	} else {
		switch len(nums) {
		case 1:
			mins = nums[0]
		case 2:
			mins, secs = nums[0], nums[1]
		case 3:
			hours, mins, secs = nums[0], nums[1], nums[2]
		}
	}
	// Minutes are bounded only when hours precede them; "90:00" is 90 minutes.
	hasHours := m[1] != "" || len(nums) == 3
	if hasHours && mins > 59 {
		return 0, fmt.Errorf("duration %q: minutes must be 0..59", s)
	}
	if len(nums) > 1 && secs > 59 {
		return 0, fmt.Errorf("duration %q: seconds must be 0..59", s)
	}
	total := ((days*24+hours)*60+mins)*60 + secs // each field < 2^31: no overflow
	if total > int64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(total) * time.Second, nil
}

var sizeRE sizeMatcher // match.go

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gib": 1 << 30,
	"t":   1 << 40,
	"tib": 1 << 40,
}

// ParseSize accepts "64GiB", "512MiB", "1.5GiB", "64G", "100M", "1024K",
// "1T"; a plain number is bytes. KiB/MiB/GiB/TiB and K/M/G/T are binary
// (1024-based) as in Slurm. "GB" and friends are refused rather than guessed
// at, since users mean different things by them. Fractions of a byte are
// dropped.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New(`empty size: write e.g. "64GiB" or "512MiB"`)
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	m := sizeRE.FindStringSubmatch(t)
	if m == nil {
		return 0, fmt.Errorf(`invalid size %q: write a number and a unit, e.g. "64GiB", "512MiB" or "1.5GiB"`, s)
	}
	mult, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q: use KiB, MiB, GiB, TiB (or K, M, G, T)", m[2])
	}
	if len(m[1]) > 64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Int64(), nil
}

// ExpandPattern expands an output/error file pattern: %j is the job id, %a
// the array index (empty when arrayIndex < 0, i.e. not an array task), %x
// the job name, %u the user and %% a literal percent sign. Unknown sequences
// are kept as written, as Slurm does.
func ExpandPattern(pattern string, id uint64, arrayIndex int, name, user string) string {
	return ExpandArrayPattern(pattern, id, id, arrayIndex, name, user)
}

// ExpandArrayPattern is ExpandPattern for an array element: %A is the
// array's id (the job's own id when it is not in an array).
func ExpandArrayPattern(pattern string, id, arrayJobID uint64, arrayIndex int, name, user string) string {
	if !strings.Contains(pattern, "%") {
		return pattern
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' || i+1 == len(pattern) {
			b.WriteByte(c)
			continue
		}
		i++
		switch pattern[i] {
		case 'j':
			b.WriteString(strconv.FormatUint(id, 10))
		case 'A':
			b.WriteString(strconv.FormatUint(arrayJobID, 10))
		case 'a':
			if arrayIndex >= 0 {
				b.WriteString(strconv.Itoa(arrayIndex))
			}
		case 'x':
			b.WriteString(name)
		case 'u':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(pattern[i])
		}
	}
	return b.String()
}

// formatSize renders bytes in the largest binary unit that divides it, for
// messages.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
