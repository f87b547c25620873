package virtual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/hpc-sched/hpc/agent"
	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/resources/nodeclass"
)

// Transport gives virtual node name its connection to the server: HTTPS
// with the node's own certificate for `hpcd agent --virtual`, the server's
// in-process transport in tests.
type Transport func(ctx context.Context, name string) (agent.Transport, error)

// Fleet is one process's virtual nodes. Each has its own agent.Runner —
// registration, heartbeats, commands, outcomes, reconcile and self-fencing
// are the real agent protocol; only the executor is virtual.
type Fleet struct {
	nodes   []*Node
	runners []*agent.Runner
}

// joinParallel bounds the transports made at once (each may be a join:
// a key, a CSR and a round trip to the server).
const joinParallel = 16

// NewFleet makes a virtual node and its agent for every description;
// features are added to every node's own.
func NewFleet(ctx context.Context, nodes []nodeclass.Node, features []string, tr Transport, log *slog.Logger) (*Fleet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{nodes: make([]*Node, len(nodes)), runners: make([]*agent.Runner, len(nodes))}
	trs := make([]agent.Transport, len(nodes))
	errs := make([]error, len(nodes))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(joinParallel, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if trs[i], errs[i] = tr(ctx, nodes[i].Name); errs[i] != nil {
					errs[i] = fmt.Errorf("virtual node %s: %w", nodes[i].Name, errs[i])
				}
			}
		}()
	}
	for i := range nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, nd := range nodes {
		reg := Registration(nd)
		for _, x := range features {
			if !slices.Contains(reg.Features, x) {
				reg.Features = append(reg.Features, x)
			}
		}
		// The runner reports the node's outcomes; it is made after the
		// node, which only reports once a launch (from the runner) ran.
		var r *agent.Runner
		vn := New(nd.Name, func(o api.Outcome) { r.Report(o) }, log)
		r = agent.NewRunner(agent.Config{Node: reg, Log: log}, trs[i], vn)
		f.nodes[i], f.runners[i] = vn, r
	}
	return f, nil
}

// Len is the number of virtual nodes.
func (f *Fleet) Len() int { return len(f.nodes) }

// Register registers every node with the server, joinParallel at a time,
// so that all are known before Run (and before jobs are submitted).
func (f *Fleet) Register(ctx context.Context) error {
	errs := make([]error, len(f.runners))
	sem := make(chan struct{}, joinParallel)
	var wg sync.WaitGroup
	for i, r := range f.runners {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.Register(ctx); err != nil {
				errs[i] = fmt.Errorf("virtual node %s: %w", f.nodes[i].Name(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run runs every node's agent until ctx ends. An agent the server refuses
// stops on its own; Run returns when all have stopped, with their errors.
func (f *Fleet) Run(ctx context.Context) error {
	errs := make([]error, len(f.runners))
	var wg sync.WaitGroup
	for i, r := range f.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				errs[i] = fmt.Errorf("virtual node %s: %w", f.nodes[i].Name(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
