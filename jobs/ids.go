package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// JobRef is a job id as users write it on the command line, as in Slurm:
// "42" (a job, or a whole array when 42 is an array's id), "42_7" (one
// element of array 42) or "42_[3-9]" / "42_[1,3,5-7]" (several elements).
type JobRef struct {
	ID      uint64
	Indices []int // nil: the job or whole array ID; else these elements
}

// String writes the reference back in its short form.
func (r JobRef) String() string {
	id := strconv.FormatUint(r.ID, 10)
	switch len(r.Indices) {
	case 0:
		return id
	case 1:
		return id + "_" + strconv.Itoa(r.Indices[0])
	}
	return id + "_[" + FormatIndices(r.Indices) + "]"
}

// ParseJobRef reads one job reference.
func ParseJobRef(s string) (JobRef, error) {
	s = strings.TrimSpace(s)
	idText, idx, isElem := strings.Cut(s, "_")
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil || id == 0 {
		return JobRef{}, fmt.Errorf("%q is not a job id: write 42, 42_7 (an array element) or 42_[3-9]", truncate(s))
	}
	if !isElem {
		return JobRef{ID: id}, nil
	}
	if strings.HasPrefix(idx, "[") && strings.HasSuffix(idx, "]") {
		idx = idx[1 : len(idx)-1]
	}
	indices, err := ParseIndices(idx)
	if err != nil || len(indices) == 0 {
		return JobRef{}, fmt.Errorf("%q: bad array indices: write 42_7 or 42_[3-9] or 42_[1,3,5-7]", truncate(s))
	}
	return JobRef{ID: id, Indices: indices}, nil
}

// FormatIndices writes ascending indices compactly, in the form
// ParseIndices reads: "3-9,12", and "1-13:2" for a run with a step.
func FormatIndices(idx []int) string {
	var b strings.Builder
	for i := 0; i < len(idx); {
		k, step := i, 1
		if i+1 < len(idx) {
			step = idx[i+1] - idx[i]
		}
		for k+1 < len(idx) && idx[k+1]-idx[k] == step {
			k++
		}
		// A stepped run needs three members to beat "a,b".
		if step != 1 && k-i < 2 {
			k = i
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		if k > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(idx[k]))
			if step != 1 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(step))
			}
		}
		i = k + 1
	}
	return b.String()
}
