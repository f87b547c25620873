package agent

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/hpc-sched/hpc/api"
)

// healthDevice is a mock GPU whose memory health the test sets.
func healthDevice(idx int, remapFailed, remapPending bool, retiredPending nvml.EnableState) *mock.Device {
	return &mock.Device{
		GetIndexFunc: func() (int, nvml.Return) { return idx, nvml.SUCCESS },
		GetRemappedRowsFunc: func() (int, int, bool, bool, nvml.Return) {
			return 0, 0, remapPending, remapFailed, nvml.SUCCESS
		},
		GetRetiredPagesPendingStatusFunc: func() (nvml.EnableState, nvml.Return) { return retiredPending, nvml.SUCCESS },
		RegisterEventsFunc:               func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS },
	}
}

func TestGPUHealthFromNVML(t *testing.T) {
	devs := []*mock.Device{
		healthDevice(0, false, false, nvml.FEATURE_DISABLED), // healthy
		healthDevice(1, true, false, nvml.FEATURE_DISABLED),  // row remap failed
		healthDevice(2, false, true, nvml.FEATURE_DISABLED),  // row remap pending
		healthDevice(3, false, false, nvml.FEATURE_ENABLED),  // pages waiting for retirement
		healthDevice(4, false, false, nvml.FEATURE_DISABLED), // gets XID 79
		healthDevice(5, false, false, nvml.FEATURE_DISABLED), // gets XID 13 (a job's own fault: not critical)
	}
	// GetRemappedRows unsupported (pre-Ampere): says nothing.
	devs[0].GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED }
	var events atomic.Int32
	set := &mock.EventSet{
		WaitFunc: func(uint32) (nvml.EventData, nvml.Return) {
			switch events.Add(1) {
			case 1:
				return nvml.EventData{Device: devs[4], EventType: nvml.EventTypeXidCriticalError, EventData: 79}, nvml.SUCCESS
			case 2:
				return nvml.EventData{Device: devs[5], EventType: nvml.EventTypeXidCriticalError, EventData: 13}, nvml.SUCCESS
			}
			time.Sleep(time.Millisecond)
			return nvml.EventData{}, nvml.ERROR_TIMEOUT
		},
		FreeFunc: func() nvml.Return { return nvml.SUCCESS },
	}
	lib := &mock.Interface{
		InitFunc:                   func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:               func() nvml.Return { return nvml.SUCCESS },
		DeviceGetCountFunc:         func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) { return devs[i], nvml.SUCCESS },
		EventSetCreateFunc:         func() (nvml.EventSet, nvml.Return) { return set, nvml.SUCCESS },
	}
	h := &GPUHealth{xid: map[int]string{}, polled: map[int]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.watch(ctx, lib, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for events.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	got := h.Check()
	want := []api.GPUHealth{
		{Index: 0, Healthy: true},
		{Index: 1, Reason: "row remapping failed: the GPU's memory needs service"},
		{Index: 2, Reason: "row remapping pending: reset the GPU"},
		{Index: 3, Reason: "retired pages pending: reset the GPU"},
		{Index: 4, Reason: "XID 79 (GPU has fallen off the bus)"},
		{Index: 5, Healthy: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("GPU %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestGPUHealthWithoutNVML(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	h := &GPUHealth{xid: map[int]string{}, polled: map[int]string{}}
	h.watch(context.Background(), lib, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	if got := h.Check(); got != nil {
		t.Errorf("without NVML: %+v", got)
	}
}
