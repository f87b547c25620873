package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-sched/hpc/api"
)

// Ended jobs go to the accounting archive of a real `hpcd dev`; history,
// usage and eff read it, filtered on the server, and it survives a restart.
func TestAccounting(t *testing.T) {
	c := startCluster(t)
	ok := c.writeJob("ok.hcl", `job "ok" {
  account  = "physics"
  walltime = "1m"
  resources { memory = "64MiB" }
  task { script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done" }
}`)
	bad := c.writeJob("bad.hcl", `job "bad" {
  account  = "bio"
  walltime = "1m"
  task { script = "exit 3" }
}`)
	okID := c.submit(ok, "--wait")
	_, _, code := c.hpcsub("submit", "--wait", bad)
	if code != 3 {
		t.Fatalf("submit --wait of bad.hcl: exit %d, want 3", code)
	}
	badID := okID + 1
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	theirs := c.writeJob("theirs.hcl", `job "theirs" {
  walltime = "1m"
  task { script = "true" }
}`)
	if out, errOut, code := c.hpcsubAs(nobody, "submit", "--wait", theirs); code != 0 {
		t.Fatalf("submit as nobody: exit %d: %s%s", code, out, errOut)
	}
	theirID := badID + 1

	ids := func(out string) []uint64 {
		var jobs []api.Job
		mustJSON(t, out, &jobs)
		var got []uint64
		for _, j := range jobs {
			got = append(got, j.ID)
		}
		return got
	}
	check := func(c *cluster) {
		t.Helper()
		tests := []struct {
			cred *syscall.Credential
			args []string
			want []uint64
		}{
			{nil, nil, []uint64{okID, badID, theirID}},
			{nil, []string{"--state", "failed"}, []uint64{badID}},
			{nil, []string{"--account", "physics"}, []uint64{okID}},
			{nil, []string{"--user", "nobody"}, []uint64{theirID}},
			{nil, []string{"--since", "2000-01-01", "--until", "2000-01-02"}, nil},
			{nobody, nil, []uint64{theirID}}, // users see their own jobs only
		}
		for _, tt := range tests {
			out, errOut, code := c.hpcsubAs(tt.cred, append([]string{"history", "--json"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("history %v: exit %d: %s", tt.args, code, errOut)
			}
			if got := ids(out); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("history %v (as %v) = %v, want %v", tt.args, tt.cred, got, tt.want)
			}
		}
	}
	check(c)
	_, errOut, code := c.hpcsubAs(nobody, "history", "--user", "root")
	if code != 1 || !strings.Contains(errOut, "only admins") {
		t.Errorf("nobody asking for root's history: exit %d, %q", code, errOut)
	}

	out, _, _ := c.hpcsub("history")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "JOBID") || !strings.Contains(lines[2], "bio") || !strings.Contains(lines[2], "FAILED") {
		t.Errorf("history table:\n%s", out)
	}

	out, errOut, code = c.hpcsub("usage", "--by", "account", "--json")
	if code != 0 {
		t.Fatalf("usage: exit %d: %s", code, errOut)
	}
	var rep api.UsageReport
	mustJSON(t, out, &rep)
	accounts := map[string]api.UsageRow{}
	for _, r := range rep.Rows {
		accounts[r.Key] = r
	}
	if len(rep.Rows) != 3 || accounts["physics"].Jobs != 1 || accounts["bio"].Jobs != 1 || accounts["physics"].CPUHours <= 0 {
		t.Errorf("usage by account = %+v", rep.Rows)
	}
	out, _, _ = c.hpcsub("usage", "--by", "user")
	if !strings.Contains(out, "root") || !strings.Contains(out, "nobody") || !strings.Contains(out, "TOTAL") {
		t.Errorf("usage by user:\n%s", out)
	}

	out, errOut, code = c.hpcsub("eff", "--json", fmt.Sprint(okID))
	if code != 0 {
		t.Fatalf("eff: exit %d: %s", code, errOut)
	}
	var ef struct {
		Runs          int     `json:"runs"`
		CPUs          int     `json:"cpus"`
		CPUEfficiency float64 `json:"cpu_efficiency"`
		PeakMemory    int64   `json:"peak_memory"`
		MemEff        float64 `json:"memory_efficiency"`
		WalltimeUsed  float64 `json:"walltime_used"`
	}
	mustJSON(t, out, &ef)
	if ef.Runs != 1 || ef.CPUs != 1 || ef.CPUEfficiency <= 0 || ef.CPUEfficiency > 1.5 || ef.PeakMemory <= 0 || ef.MemEff <= 0 || ef.WalltimeUsed <= 0 {
		t.Errorf("eff = %+v", ef)
	}
	out, _, _ = c.hpcsub("eff", fmt.Sprint(badID))
	if !strings.Contains(out, "cpu efficiency") || !strings.Contains(out, "run 0") || !strings.Contains(out, "FAILED exit 3") {
		t.Errorf("eff table:\n%s", out)
	}
	if _, errOut, code := c.hpcsubAs(nobody, "eff", fmt.Sprint(okID)); code != 1 || !strings.Contains(errOut, "another user") {
		t.Errorf("nobody's eff of root's job: exit %d, %q", code, errOut)
	}

	// Archived jobs are not loaded again; the archive answers after a restart.
	c.stop()
	c.start()
	check(c)
	if j := c.show(badID); j.State != api.StateFailed || len(j.Runs) != 1 || j.Runs[0].ExitCode == nil || *j.Runs[0].ExitCode != 3 {
		t.Errorf("show of an archived job after restart: %+v", j)
	}
}

// `hpcsub priority` on a real `hpcd dev`: the account whose job holds the
// node has used the cluster, so the other account's job comes first.
func TestPriority(t *testing.T) {
	c := startCluster(t, "--shares", "heavy=1,light=1", "--fairshare-half-life", "1h")
	cpus := c.nodes()[0].CPUs
	big := c.writeJob("big.hcl", fmt.Sprintf(`job "big" {
  account  = "heavy"
  walltime = "5m"
  resources { cpus = %d }
  task {
    command = "sleep"
    args    = ["60"]
  }
}`, cpus))
	bigID := c.submit(big)
	c.waitState(bigID, 30*time.Second, api.StateRunning)
	heavy := c.submit(c.writeJob("heavy.hcl", `job "h" {
  account  = "heavy"
  walltime = "1m"
  task { script = "true" }
}`))
	light := c.submit(c.writeJob("light.hcl", `job "l" {
  account  = "light"
  walltime = "1m"
  task { script = "true" }
}`))
	time.Sleep(1100 * time.Millisecond) // the running job's usage grows past zero
	out, errOut, code := c.hpcsub("priority", "--json")
	if code != 0 {
		t.Fatalf("priority: exit %d: %s", code, errOut)
	}
	var rep api.PriorityReport
	mustJSON(t, out, &rep)
	if len(rep.Jobs) != 2 || rep.Jobs[0].ID != light || rep.Jobs[1].ID != heavy {
		t.Fatalf("priority order %+v: want light's job %d first", rep.Jobs, light)
	}
	if f := rep.Jobs[1].Factors.FairShare; f >= 1 || rep.Jobs[0].Factors.FairShare != 1 {
		t.Errorf("fair-share factors %+v", rep.Jobs)
	}
	out, _, _ = c.hpcsub("priority", fmt.Sprint(heavy))
	if !strings.Contains(out, "FAIRSHARE") || !strings.Contains(out, "heavy") || strings.Contains(out, fmt.Sprintf("\n%d ", light)) {
		t.Errorf("priority of one job:\n%s", out)
	}
	if _, errOut, code := c.hpcsub("priority", fmt.Sprint(bigID)); code != 1 || !strings.Contains(errOut, "RUNNING") {
		t.Errorf("priority of a running job: exit %d, %q", code, errOut)
	}
	c.hpcsub("cancel", fmt.Sprint(bigID))
}
