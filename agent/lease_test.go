package agent

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// leaseExec records the fence timeouts of its launches and its renewals.
type leaseExec struct {
	countingExec
	mu      sync.Mutex
	fence   []time.Duration
	renewed []time.Time
}

func (l *leaseExec) Launch(_ context.Context, a api.Assignment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fence = append(l.fence, a.FenceAfter)
	return nil
}

func (l *leaseExec) RenewLeases(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewed = append(l.renewed, at)
}

// registerOnly answers registrations with the given timeouts.
type registerOnly struct{ heartbeat, down time.Duration }

func (r registerOnly) Register(context.Context, api.RegisterRequest) (api.RegisterResponse, error) {
	return api.RegisterResponse{Session: "s1", Heartbeat: r.heartbeat, DownTimeout: r.down}, nil
}

func (r registerOnly) Sync(context.Context, api.SyncRequest) (api.SyncResponse, error) {
	return api.SyncResponse{}, nil
}

// TestLeases: only a remote agent's (Config.Lease) requeueable jobs are
// leased, for the DOWN timeout less a heartbeat, and a registration renews
// the leases to the time it was sent.
func TestLeases(t *testing.T) {
	tests := []struct {
		name           string
		lease, requeue bool
		want           time.Duration
		renews         bool
	}{
		{"remote agent, requeueable job", true, true, 5 * time.Second, true},
		{"remote agent, job not requeued", true, false, 0, true},
		{"in-process agent (hpcd dev)", false, true, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := &leaseExec{}
			r := NewRunner(Config{Node: api.NodeRegistration{Name: "n1"}, Lease: tc.lease, Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
				registerOnly{heartbeat: time.Second, down: 6 * time.Second}, ex)
			before := time.Now()
			if err := r.Register(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.apply(context.Background(), api.Command{Kind: api.CommandLaunch, JobID: 7, Launch: &api.Assignment{JobID: 7, Attempt: 1, Requeue: tc.requeue}})
			ex.mu.Lock()
			defer ex.mu.Unlock()
			if len(ex.fence) != 1 || ex.fence[0] != tc.want {
				t.Errorf("launched with fence timeouts %v, want [%v]", ex.fence, tc.want)
			}
			if renewed := len(ex.renewed) == 1 && !ex.renewed[0].Before(before) && !ex.renewed[0].After(time.Now()); renewed != tc.renews {
				t.Errorf("renewals %v (registration sent after %v), want renewed: %v", ex.renewed, before, tc.renews)
			}
		})
	}
}
