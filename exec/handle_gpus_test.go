package exec

import (
	"context"
	"fmt"
	"testing"
)

// An adopted job's handle tells its GPUs and share from the job's record,
// as the launching agent wrote it.
func TestHandleGPUsAfterAdoption(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	tests := []struct {
		name  string
		gpus  []GPUDevice
		share float64
		want  string
	}{
		{"whole GPUs", []GPUDevice{{Index: 2, Minor: 202}, {Index: 5, Minor: 205}}, 0, "[2 5] 0"},
		{"shared", []GPUDevice{{Index: 1, Minor: 201, Memory: 1 << 30}}, 0.25, "[1] 0.25"},
		{"no GPUs", nil, 0, "[] 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := te.spec("sleep 0.1")
			s.GPUs, s.GPUShare = tc.gpus, tc.share
			launched, err := te.Launch(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			adopted, err := te.Adopt(s.JobID)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []*Handle{launched, adopted} {
				idx, share, err := h.GPUs()
				if got := fmt.Sprint(idx, share); err != nil || got != tc.want {
					t.Errorf("GPUs: %s (%v), want %s", got, err, tc.want)
				}
			}
			wait(t, launched)
		})
	}
}
