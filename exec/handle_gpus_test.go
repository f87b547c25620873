package exec

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
)

// A job's handle tells its GPUs and share as its launch gave them, also
// to another executor (a restarted agent) that adopts it: from the shim's
// launch record, or from the spawner that runs it.
func TestHandleGPUsAfterAdoption(t *testing.T) {
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
	for _, mode := range []string{"shim", "spawner"} {
		for _, tc := range tests {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				te := newTestExecutor(t, "")
				if (mode == "spawner") != viaSpawner(t) {
					t.Fatalf("executor in mode %s: spawner %v", mode, viaSpawner(t))
				}
				if mode == "spawner" && te.sp == nil {
					t.Skip("no spawner on this host")
				}
				s := te.spec("sleep 0.3")
				s.GPUs, s.GPUShare = tc.gpus, tc.share
				launched, err := te.Launch(context.Background(), s)
				if err != nil {
					t.Fatal(err)
				}
				restarted, err := New(Config{StateDir: te.cfg.StateDir, CgroupParent: te.cfg.CgroupParent, AllowRoot: true, Spawner: te.cfg.Spawner,
					KillGrace: te.cfg.KillGrace}, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				adopted, err := restarted.Adopt(s.JobID)
				if err != nil {
					t.Fatal(err)
				}
				for name, h := range map[string]*Handle{"launched": launched, "adopted": adopted} {
					idx, share, err := h.GPUs()
					if got := fmt.Sprint(idx, share); err != nil || got != tc.want {
						t.Errorf("%s: GPUs %s (%v), want %s", name, got, err, tc.want)
					}
				}
				wait(t, launched)
				wait(t, adopted)
				restarted.Close()
			})
		}
	}
}
