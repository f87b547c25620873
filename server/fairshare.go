package server

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/api"
	"github.com/hpc-sched/hpc/placement"
	"github.com/hpc-sched/hpc/store"
)

// FairShare configures fair-share: each account's usage decays with
// HalfLife and is weighed against its share of the cluster.
type FairShare struct {
	// HalfLife: usage this long ago counts half (Slurm's
	// PriorityDecayHalfLife); 0 means 7 days.
	HalfLife time.Duration
	// Shares per account (Slurm's fairshare=); accounts not named get
	// DefaultShares, 0 meaning 1.
	Shares        map[string]float64
	DefaultShares float64
	// GPUWeight is what one GPU-second counts in CPU-seconds of usage
	// (Slurm's TRESBillingWeights GRES/gpu=); 0, Slurm's default, counts
	// CPUs only.
	GPUWeight float64
}

const usageKeyPrefix = "fairshare/"

// decayedUsage is an account's usage (allocated CPU-seconds) decayed to
// time At; stored so fair share survives restarts.
type decayedUsage struct {
	Value float64   `json:"v"`
	At    time.Time `json:"t"`
}

// to is the usage decayed (or, for a time before At, grown) to time t.
func (d decayedUsage) to(t time.Time, halfLife time.Duration) float64 {
	if d.At.IsZero() {
		return d.Value
	}
	return d.Value * math.Exp2(-t.Sub(d.At).Seconds()/halfLife.Seconds())
}

// shareTable is the decayed usage of every account that has used the
// cluster; the server's lock guards it.
type shareTable struct {
	cfg   FairShare
	usage map[string]decayedUsage
}

func newShareTable(cfg FairShare) shareTable {
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = 7 * 24 * time.Hour
	}
	if cfg.DefaultShares <= 0 {
		cfg.DefaultShares = 1
	}
	return shareTable{cfg: cfg, usage: map[string]decayedUsage{}}
}

// load reads the stored usage of every account.
func (t *shareTable) load(st *store.Store) error {
	return st.Usage(func(key string, data []byte) error {
		account, ok := strings.CutPrefix(key, usageKeyPrefix)
		if !ok {
			return nil
		}
		var d decayedUsage
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("usage of account %s: %w", account, err)
		}
		t.usage[account] = d
		return nil
	})
}

// charged returns the accounts' usage with charges added at now, encoded
// for the store and decoded for install once they are durable.
func (t *shareTable) charged(charges map[string]float64, now time.Time) (map[string][]byte, map[string]decayedUsage) {
	enc := make(map[string][]byte, len(charges))
	out := make(map[string]decayedUsage, len(charges))
	for account, c := range charges {
		d := decayedUsage{Value: t.usage[account].to(now, t.cfg.HalfLife) + c, At: now}
		data, _ := json.Marshal(d)
		enc[usageKeyPrefix+account] = data
		out[account] = d
	}
	return enc, out
}

func (t *shareTable) install(updated map[string]decayedUsage) {
	for k, v := range updated {
		t.usage[k] = v
	}
}

func (t *shareTable) shares(account string) float64 {
	if s, ok := t.cfg.Shares[account]; ok && s > 0 {
		return s
	}
	return t.cfg.DefaultShares
}

// accountShare is one account's standing: its normalised share, usage,
// and fair-share factor.
type accountShare struct {
	Account   string
	Shares    float64 // normalised: this account's fraction of all shares
	Usage     float64 // normalised: this account's fraction of all decayed usage
	RawUsage  float64 // decayed allocated CPU-seconds, running jobs included
	FairShare float64 // 2^(-Usage/Shares), in (0, 1]
}

// factors computes every account's fair-share factor at now, as Slurm's
// classic formula does: F = 2^(-U/S) with U the account's fraction of the
// cluster's decayed usage and S its fraction of the shares. Running jobs
// count with the time they have held their CPUs so far, so an account
// that floods the cluster loses priority while it does, not only after.
// Accounts are those configured, those with usage and those named in
// extra (e.g. of pending jobs). s.mu held.
func (s *Server) fairShareLocked(now time.Time, extra []string) map[string]accountShare {
	t := &s.shares
	raw := map[string]float64{}
	for a := range t.cfg.Shares {
		raw[a] += 0
	}
	for _, a := range extra {
		raw[a] += 0
	}
	for a, d := range t.usage {
		raw[a] += d.to(now, t.cfg.HalfLife)
	}
	for _, j := range s.jobs {
		if j.State != api.StateRunning || j.Start == nil {
			continue
		}
		cpus := 0
		for _, a := range j.Alloc {
			cpus += len(a.CPUs)
		}
		held := max(0, now.Sub(*j.Start).Seconds())
		raw[j.Account] += float64(cpus)*held + t.cfg.GPUWeight*j.gpuSeconds(held)
	}
	var totalUsage, totalShares float64
	for a, u := range raw {
		totalUsage += u
		totalShares += t.shares(a)
	}
	out := make(map[string]accountShare, len(raw))
	for a, u := range raw {
		sh := accountShare{Account: a, Shares: t.shares(a) / totalShares, RawUsage: u, FairShare: 1}
		if totalUsage > 0 {
			sh.Usage = u / totalUsage
			sh.FairShare = math.Exp2(-sh.Usage / sh.Shares)
		}
		out[a] = sh
	}
	return out
}

// sortedShares lists shares by account name, for stable output.
func sortedShares(m map[string]accountShare) []accountShare {
	out := make([]accountShare, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// setFairShareLocked gives each pending job its account's fair-share
// factor, which the placer weighs into the job's effective priority;
// s.mu held.
func (s *Server) setFairShareLocked(pending []placement.Job, now time.Time) {
	if len(pending) == 0 || s.cfg.Policy.Weights.FairShare == 0 {
		return
	}
	accounts := make([]string, 0, len(pending))
	for _, p := range pending {
		if j := s.jobs[p.ID]; j != nil {
			accounts = append(accounts, j.Account)
		}
	}
	shares := s.fairShareLocked(now, accounts)
	for i := range pending {
		if j := s.jobs[pending[i].ID]; j != nil {
			pending[i].FairShare = shares[j.Account].FairShare
		}
	}
}
