package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runHPCD runs hpcd in-process with the simulate command only; exit codes
// come back as errors instead of ending the test binary.
func runHPCD(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name: "hpcd", Writer: &out, ErrWriter: &out,
		Commands:       []*cli.Command{simulateCommand()},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"hpcd", "simulate"}, args...))
	return out.String(), err
}

// tinyTrace is 4 nodes, three jobs; EASY backfills the third.
func tinyTrace(t *testing.T) string {
	t.Helper()
	const swf = "; MaxProcs: 4\n" +
		"1 0 -1 100 2 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n" +
		"2 1 -1 100 4 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n" +
		"3 2 -1 50 2 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n" +
		"4 3 -1 0 2 -1 -1 -1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n" // run 0: skipped
	p := filepath.Join(t.TempDir(), "tiny.swf")
	if err := os.WriteFile(p, []byte(swf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSimulateJSON(t *testing.T) {
	p := tinyTrace(t)
	cases := []struct {
		policy  string
		avgWait float64
	}{
		{"fcfs", 99},
		{"easy", 33},
		{"conservative", 33},
	}
	for _, c := range cases {
		t.Run(c.policy, func(t *testing.T) {
			out, err := runHPCD(t, "--trace", p, "--policy", c.policy, "--json")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var m map[string]float64
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			want := []string{"avg_bounded_slowdown", "avg_response_s", "avg_wait_s", "jobs", "makespan_s", "max_wait_s", "skipped", "throughput_per_h", "utilization", "wall_s"}
			if !slices.Equal(keys, want) {
				t.Errorf("keys %v, want %v", keys, want)
			}
			if m["jobs"] != 3 || m["skipped"] != 1 || m["avg_wait_s"] != c.avgWait {
				t.Errorf("jobs %v skipped %v avg wait %v; want 3, 1, %v", m["jobs"], m["skipped"], m["avg_wait_s"], c.avgWait)
			}
		})
	}
}

func TestSimulateTable(t *testing.T) {
	out, err := runHPCD(t, "--trace", tinyTrace(t), "--from", "1", "--jobs", "2", "--nodes", "8")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, s := range []string{"tiny.swf", "jobs 1..2, 8 nodes", "avg bounded slowdown", "utilization"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestSimulateGPUWorkload(t *testing.T) {
	out, err := runHPCD(t, "--gpu-workload", "--jobs", "200", "--seed", "3", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"jobs", "avg_wait_s", "avg_bounded_slowdown", "gpu_utilization", "best_link_share", "multi_gpu_jobs", "cpu_jobs_on_gpu_nodes", "avg_wait_by_gpus_s", "wall_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	if m["jobs"] != 200.0 {
		t.Errorf("jobs = %v", m["jobs"])
	}
}

func TestSimulateErrors(t *testing.T) {
	p := tinyTrace(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing", nil, 2, "--trace"},
		{"both", []string{"--trace", p, "--gpu-workload"}, 2, "exclude"},
		{"bad-policy", []string{"--trace", p, "--policy", "sjf"}, 2, "fcfs, easy or conservative"},
		{"negative", []string{"--trace", p, "--jobs", "-1"}, 2, "negative"},
		{"missing-file", []string{"--trace", filepath.Join(t.TempDir(), "no.swf")}, 1, "no.swf"},
		{"past-end", []string{"--trace", p, "--from", "3"}, 1, "past the 3 usable jobs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runHPCD(t, c.args...)
			var ec cli.ExitCoder
			if !errors.As(err, &ec) || ec.ExitCode() != c.code || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want exit %d with %q", err, c.code, c.want)
			}
		})
	}
}

// TestSimulateWideSWF: a trace with more than 18 columns replays like its
// 18-column form, and the extra columns are said once.
func TestSimulateWideSWF(t *testing.T) {
	narrow, err := os.ReadFile(tinyTrace(t))
	if err != nil {
		t.Fatal(err)
	}
	var wide []string
	for _, l := range strings.Split(strings.TrimSpace(string(narrow)), "\n") {
		if !strings.HasPrefix(l, ";") {
			l += " 7 -1 3"
		}
		wide = append(wide, l)
	}
	p := filepath.Join(t.TempDir(), "wide.swf")
	if err := os.WriteFile(p, []byte(strings.Join(wide, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := runHPCD(t, "--trace", tinyTrace(t), "--json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := runHPCD(t, "--trace", p, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	note, body, _ := strings.Cut(got, "\n")
	if strings.Count(got, "more than 18 fields") != 1 || !strings.Contains(note, "4 job lines") {
		t.Errorf("want one note on 4 wide lines, got:\n%s", got)
	}
	dropWall := func(s string) string {
		i := strings.Index(s, `"wall_s"`)
		return s[:i]
	}
	if dropWall(body) != dropWall(want) {
		t.Errorf("wide trace replays differently:\n%s\nwant\n%s", body, want)
	}
}

// TestSimulateWorkloadOnCluster replays a CSV workload on a node-class
// cluster and checks the jobs file row by row: sharers of one GPU, a
// whole-GPU job beside them, a model constraint, a CPU job.
func TestSimulateWorkloadOnCluster(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "nodes.hcl")
	os.WriteFile(cluster, []byte(`class "gpu" {
  count  = 1
  cpus   = 8
  memory = "64GiB"
  gpu {
    model  = "NVIDIA A100"
    memory = "40GiB"
    count  = 2
  }
}
class "cpu" {
  count  = 1
  cpus   = 4
  memory = "16GiB"
}
`), 0o644)
	workload := filepath.Join(dir, "jobs.csv")
	os.WriteFile(workload, []byte("id,submit_s,run_s,walltime_s,nodes,cpus,memory_mib,gpus,gpu_share,gpu_model,priority,user,account\n"+
		"1,0,100,,,1,1024,1,0.5,,,alice,a\n"+
		"2,0,100,200,,1,1024,1,0.5,A100|V100,,bob,b\n"+
		"3,0,50,,,2,,1,,,,carol,c\n"+
		"4,10,30,60,1,4,2048,,,,500,dave,d\n"+
		"5,20,10,,,1,,2,,,,erin,e\n"), 0o644)
	jobsOut := filepath.Join(dir, "out.csv")
	out, err := runHPCD(t, "--cluster", cluster, "--workload", workload, "--jobs-out", jobsOut, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"avg_response_s", "throughput_per_h", "gpu_utilization", "utilization", "frag_mean_gpus", "frag_curve"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	got, err := os.ReadFile(jobsOut)
	if err != nil {
		t.Fatal(err)
	}
	// Jobs 1 and 2 share GPU 0 (0.5 each), job 3 takes GPU 1 whole, job
	// 4 (CPU) goes to the CPU node, job 5 (2 GPUs) waits until 1, 2 and 3
	// are done at 100 s.
	want := "id,submit_s,start_s,end_s,node_count,nodes,gpus\n" +
		"1,0,0,100,1,gpu-0001,gpu-0001:0*0.5\n" +
		"2,0,0,100,1,gpu-0001,gpu-0001:0*0.5\n" +
		"3,0,0,50,1,gpu-0001,gpu-0001:1\n" +
		"4,10,10,40,1,cpu-0001,\n" +
		"5,20,100,110,1,gpu-0001,gpu-0001:0+1\n"
	if string(got) != want {
		t.Errorf("jobs file:\n%s\nwant\n%s", got, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--workload", workload}, "--workload and --cluster go together"},
		{[]string{"--cluster", cluster, "--workload", workload, "--trace", "x.swf"}, "exclude each other"},
		{[]string{"--cluster", filepath.Join(dir, "none.hcl"), "--workload", workload}, "none.hcl"},
	} {
		out, err := runHPCD(t, c.args...)
		if err == nil || !strings.Contains(err.Error()+out, c.want) {
			t.Errorf("%v: err %v out %q, want %q", c.args, err, out, c.want)
		}
	}
}
