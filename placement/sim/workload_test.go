package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const workloadHeader = "id,submit_s,run_s,walltime_s,nodes,cpus,memory_mib,gpus,gpu_share,gpu_model,priority,user,account\n"

func TestReadWorkload(t *testing.T) {
	w, err := ReadWorkload(strings.NewReader(workloadHeader +
		"7,1.5,100,60,2,4,2048,1,0.25,V100|A100,900,alice,physics\n" +
		"8,3,10,,,,,,,,,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := w.Jobs[0]
	if j.ID != 7 || j.Submit != Epoch.Add(1500*time.Millisecond) || j.Run != time.Minute || j.Walltime != time.Minute ||
		j.Nodes != 2 || j.PerNode.CPUs != 4 || j.PerNode.Memory != 2048<<20 || j.PerNode.GPU.Count != 1 ||
		j.PerNode.GPU.Share != 0.25 || j.PerNode.GPU.Model != "V100|A100" || j.Priority != 900 || w.Users[0] != "alice" || w.Accounts[0] != "physics" {
		t.Errorf("job 7 = %+v", j)
	}
	d := w.Jobs[1]
	if d.Nodes != 1 || d.PerNode.CPUs != 1 || d.Priority != 100 || d.Walltime != 10*time.Second || d.PerNode.GPU.Count != 0 {
		t.Errorf("defaults = %+v", d)
	}
	// Columns in another order read the same.
	w2, err := ReadWorkload(strings.NewReader("account,user,priority,gpu_model,gpu_share,gpus,memory_mib,cpus,nodes,walltime_s,run_s,submit_s,id\nphysics,alice,900,V100|A100,0.25,1,2048,4,2,60,100,1.5,7\n"))
	if err != nil || !reflect.DeepEqual(w2.Jobs[0], j) {
		t.Errorf("reordered columns: %v %+v", err, w2)
	}
	bad := []struct{ in, want string }{
		{"", "line 1: empty file"},
		{"id,submit_s\n", `line 1: no column "run_s"`},
		{strings.Replace(workloadHeader, "user", "owner", 1), `line 1: unknown column "owner"`},
		{workloadHeader + "1,0,10,,,,,,,,,,\n1,0,10,,,,,,,,,,\n", "line 3: column id: job 1 already on line 2"},
		{workloadHeader + ",0,10,,,,,,,,,,\n", "line 2: column id: required"},
		{workloadHeader + "1,0,0,,,,,,,,,,\n", "line 2: column run_s"},
		{workloadHeader + "1,-5,10,,,,,,,,,,\n", "line 2: column submit_s"},
		{workloadHeader + "1,0,10,,1.5,,,,,,,,\n", "line 2: column nodes: \"1.5\" is not a whole number"},
		{workloadHeader + "1,0,10,,,,,2,0.5,,,,\n", "line 2: column gpu_share: a share is of one GPU"},
		{workloadHeader + "1,0,10,,,,,1,0.125,,,,\n", "line 2: column gpu_share: \"0.125\" is not a multiple of 0.01"},
		{workloadHeader + "1,0,10,,,,,,,A100,,,\n", "line 2: column gpu_model: set with gpus = 0"},
		{workloadHeader + "1,0,10,,,,,,,,1001,,\n", "line 2: column priority"},
		{workloadHeader + "1,0,10\n", "wrong number of fields"},
	}
	for _, c := range bad {
		_, err := ReadWorkload(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}
