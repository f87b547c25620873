package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/hpc-sched/hpc/api"
)

// criticalXIDs are the XID errors after which a GPU must take no new work
// until an admin has looked at it (hardware faults, ECC, NVLink, a GPU off
// the bus, row-remap events): the set NVIDIA's device plugin and DCGM
// treat as fatal to the device.
var criticalXIDs = map[uint64]string{
	48:  "double-bit ECC error",
	63:  "row remapping event",
	64:  "row remapping failure",
	74:  "NVLink error",
	79:  "GPU has fallen off the bus",
	92:  "high single-bit ECC error rate",
	94:  "contained ECC error",
	95:  "uncontained ECC error",
	119: "GSP RPC timeout",
	120: "GSP error",
}

// GPUHealth follows the node's GPUs through NVML: critical XID events (a
// GPU stays unhealthy once one was seen, until the agent restarts after
// the admin's repair) and, polled, pending page retirement and row-remap
// failures. Check gives the verdict the runner sends with each sync.
type GPUHealth struct {
	mu     sync.Mutex
	xid    map[int]string // sticky: index -> reason
	polled map[int]string // current: index -> reason
	seen   []int          // every GPU index NVML showed
}

// NewGPUHealth starts watching the GPUs of the real NVML library; on a
// node without one, Check reports nothing.
func NewGPUHealth(ctx context.Context, log *slog.Logger) *GPUHealth {
	h := &GPUHealth{xid: map[int]string{}, polled: map[int]string{}}
	go h.watch(ctx, nvml.New(), log, 30*time.Second)
	return h
}

// Check lists every GPU with its verdict, in index order; nil before
// NVML answered (or without GPUs).
func (h *GPUHealth) Check() []api.GPUHealth {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []api.GPUHealth
	for _, idx := range h.seen {
		g := api.GPUHealth{Index: idx, Healthy: true}
		if r, ok := h.xid[idx]; ok {
			g.Healthy, g.Reason = false, r
		} else if r, ok := h.polled[idx]; ok {
			g.Healthy, g.Reason = false, r
		}
		out = append(out, g)
	}
	return out
}

// watch runs until ctx ends. Init comes first and, only when it worked,
// anything else (after a failed Init the real library aborts the process
// on the next call).
func (h *GPUHealth) watch(ctx context.Context, lib nvml.Interface, log *slog.Logger, poll time.Duration) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		log.Debug("GPU health: no NVML", "err", ret)
		return
	}
	defer lib.Shutdown()
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS || n == 0 {
		return
	}
	devs := map[int]nvml.Device{}
	for i := 0; i < n; i++ {
		if dev, ret := lib.DeviceGetHandleByIndex(i); ret == nvml.SUCCESS {
			devs[i] = dev
		}
	}
	var set nvml.EventSet
	if s, ret := lib.EventSetCreate(); ret == nvml.SUCCESS {
		set = s
		defer set.Free()
		for i, dev := range devs {
			if ret := dev.RegisterEvents(nvml.EventTypeXidCriticalError, set); ret != nvml.SUCCESS {
				log.Info("GPU health: no XID events for this GPU", "index", i, "err", ret)
			}
		}
	}
	h.poll(devs)
	last := time.Now()
	for ctx.Err() == nil {
		if set == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		} else if ev, ret := set.Wait(1000); ret == nvml.SUCCESS && ev.EventType == nvml.EventTypeXidCriticalError {
			h.onXID(devs, ev, log)
		}
		if time.Since(last) >= poll {
			h.poll(devs)
			last = time.Now()
		}
	}
}

func (h *GPUHealth) onXID(devs map[int]nvml.Device, ev nvml.EventData, log *slog.Logger) {
	what, critical := criticalXIDs[ev.EventData]
	if !critical {
		log.Info("GPU XID event (not critical)", "xid", ev.EventData)
		return
	}
	idx := -1
	for i, d := range devs {
		if d == ev.Device {
			idx = i
		}
	}
	if idx < 0 && ev.Device != nil {
		if i, ret := ev.Device.GetIndex(); ret == nvml.SUCCESS {
			idx = i
		}
	}
	if idx < 0 {
		return
	}
	reason := fmt.Sprintf("XID %d (%s)", ev.EventData, what)
	log.Warn("GPU unhealthy", "index", idx, "reason", reason)
	h.mu.Lock()
	h.xid[idx] = reason
	h.mu.Unlock()
}

// poll reads the conditions NVML keeps (rather than signals).
func (h *GPUHealth) poll(devs map[int]nvml.Device) {
	polled := map[int]string{}
	var seen []int
	for i, dev := range devs {
		seen = append(seen, i)
		if r := deviceProblem(dev); r != "" {
			polled[i] = r
		}
	}
	sort.Ints(seen)
	h.mu.Lock()
	h.polled, h.seen = polled, seen
	h.mu.Unlock()
}

// deviceProblem says what is wrong with a GPU's memory, if anything: a row
// remapping that failed or awaits a reset (Ampere and later), or pages
// waiting to be retired (earlier GPUs). A query the GPU does not support
// says nothing.
func deviceProblem(dev nvml.Device) string {
	if _, _, pending, failed, ret := dev.GetRemappedRows(); ret == nvml.SUCCESS {
		switch {
		case failed:
			return "row remapping failed: the GPU's memory needs service"
		case pending:
			return "row remapping pending: reset the GPU"
		}
	}
	if st, ret := dev.GetRetiredPagesPendingStatus(); ret == nvml.SUCCESS && st == nvml.FEATURE_ENABLED {
		return "retired pages pending: reset the GPU"
	}
	return ""
}
