package sim

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-sched/hpc/placement"
)

// WorkloadColumns is the header of a workload CSV file (hpcd simulate
// --workload), in this order; an empty cell takes the default:
//
//	id          job id, a positive integer, unique (required)
//	submit_s    submit time in seconds from the start of the workload (required, >= 0)
//	run_s       how long the job really runs, seconds (required, > 0)
//	walltime_s  the limit the placer sees, seconds (default run_s); a job
//	            with run_s > walltime_s is killed at its walltime
//	nodes       gang size (default 1)
//	cpus        CPUs per node (default 1)
//	memory_mib  memory per node, MiB (default 0)
//	gpus        GPUs per node (default 0)
//	gpu_share   fraction of one GPU, 0.01..0.99 in steps of 0.01, with gpus = 1 (default: whole GPUs)
//	gpu_model   GPU model alternatives, "|"-separated, e.g. "V100|A100" (default any)
//	priority    0..1000 (default 100)
//	user        who submitted it (default empty; kept for the jobs file)
//	account     the account it is charged to (default empty)
var WorkloadColumns = []string{"id", "submit_s", "run_s", "walltime_s", "nodes", "cpus", "memory_mib",
	"gpus", "gpu_share", "gpu_model", "priority", "user", "account"}

// maxWorkloadJobs bounds a workload file, so a runaway file is refused
// instead of exhausting memory.
const maxWorkloadJobs = 10_000_000

// Workload is a replayable job stream read from CSV.
type Workload struct {
	Jobs     []Job
	Users    []string // per job, as the file gives them
	Accounts []string
}

// ReadWorkloadFile reads a workload CSV file (see WorkloadColumns).
func ReadWorkloadFile(path string) (*Workload, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w, err := ReadWorkload(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ReadWorkload parses a workload CSV stream. The header must name exactly
// the columns of WorkloadColumns, in any order; errors name the line and
// the column.
func ReadWorkload(r io.Reader) (*Workload, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("line 1: empty file; the first line is the header %s", strings.Join(WorkloadColumns, ","))
		}
		return nil, fmt.Errorf("line 1: %w", err)
	}
	col := make(map[string]int, len(head))
	for i, h := range head {
		h = strings.TrimSpace(h)
		if !slices.Contains(WorkloadColumns, h) {
			return nil, fmt.Errorf("line 1: unknown column %q; the header is %s", h, strings.Join(WorkloadColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("line 1: column %q twice", h)
		}
		col[h] = i
	}
	for _, c := range WorkloadColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("line 1: no column %q; the header is %s", c, strings.Join(WorkloadColumns, ","))
		}
	}
	w := &Workload{}
	ids := map[uint64]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, err // csv.ParseError names the line
		}
		if len(w.Jobs) == maxWorkloadJobs {
			return nil, fmt.Errorf("line %d: more than %d jobs", line, maxWorkloadJobs)
		}
		p := rowParser{rec: rec, col: col, line: line}
		j := p.job()
		if p.err != nil {
			return nil, p.err
		}
		if prev, dup := ids[j.ID]; dup {
			return nil, fmt.Errorf("line %d: column id: job %d already on line %d", line, j.ID, prev)
		}
		ids[j.ID] = line
		w.Jobs = append(w.Jobs, j)
		w.Users = append(w.Users, p.cell("user"))
		w.Accounts = append(w.Accounts, p.cell("account"))
	}
	return w, nil
}

// rowParser reads one row, keeping the first error.
type rowParser struct {
	rec  []string
	col  map[string]int
	line int
	err  error
}

func (p *rowParser) cell(name string) string { return strings.TrimSpace(p.rec[p.col[name]]) }

func (p *rowParser) fail(name, format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("line %d: column %s: %s", p.line, name, fmt.Sprintf(format, a...))
	}
}

// num reads a number in [lo, hi], def when the cell is empty (required:
// an empty cell is an error).
func (p *rowParser) num(name string, def, lo, hi float64, required bool) float64 {
	s := p.cell(name)
	if s == "" {
		if required {
			p.fail(name, "required")
		}
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		p.fail(name, "%q is not a number from %g to %g", s, lo, hi)
		return def
	}
	return v
}

func (p *rowParser) integer(name string, def, lo, hi float64, required bool) int64 {
	v := p.num(name, def, lo, hi, required)
	if v != math.Trunc(v) {
		p.fail(name, "%q is not a whole number", p.cell(name))
	}
	return int64(v)
}

const maxSeconds = 1e9 // about 31 years: bounds times so durations cannot overflow

func seconds(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Second))) }

func (p *rowParser) job() Job {
	j := placement.Job{
		ID:       uint64(p.integer("id", 0, 1, 1<<53, true)),
		Submit:   Epoch.Add(seconds(p.num("submit_s", 0, 0, maxSeconds, true))),
		Nodes:    int(p.integer("nodes", 1, 1, 100_000, false)),
		Priority: int(p.integer("priority", 100, 0, 1000, false)),
	}
	run := seconds(p.num("run_s", 0, 1e-3, maxSeconds, true))
	wall := run
	if p.cell("walltime_s") != "" {
		wall = seconds(p.num("walltime_s", 0, 1e-3, maxSeconds, false))
	}
	j.Walltime = wall
	j.PerNode.CPUs = int(p.integer("cpus", 1, 0, 1<<20, false))
	j.PerNode.Memory = p.integer("memory_mib", 0, 0, 1<<40, false) << 20
	j.PerNode.GPU.Count = int(p.integer("gpus", 0, 0, 64, false))
	j.PerNode.GPU.Model = p.cell("gpu_model")
	if s := p.cell("gpu_share"); s != "" {
		v := p.num("gpu_share", 0, 0.01, 0.99, false)
		if h := v * 100; math.Abs(h-math.Round(h)) > 1e-9 {
			p.fail("gpu_share", "%q is not a multiple of 0.01", s)
		}
		if j.PerNode.GPU.Count != 1 {
			p.fail("gpu_share", "a share is of one GPU: gpus must be 1")
		}
		j.PerNode.GPU.Share = math.Round(v*100) / 100
	}
	if j.PerNode.GPU.Count == 0 && j.PerNode.GPU.Model != "" {
		p.fail("gpu_model", "set with gpus = 0")
	}
	return Job{Job: j, Run: min(run, wall)}
}

// JobsColumns is the header of the jobs file `hpcd simulate --jobs-out`
// writes, one row per job, as Batsim's jobs file: times in seconds from
// the start of the workload; nodes ";"-separated; gpus per node as
// "node:id+id" joined by ";", a shared GPU as "node:id*0.25".
var JobsColumns = []string{"id", "submit_s", "start_s", "end_s", "node_count", "nodes", "gpus"}

// WriteJobs writes the replay's jobs file, in job order of the workload.
func (o *Outcome) WriteJobs(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(JobsColumns); err != nil {
		return err
	}
	secs := func(t time.Time) string { return strconv.FormatFloat(t.Sub(Epoch).Seconds(), 'f', -1, 64) }
	row := make([]string, len(JobsColumns))
	for i, j := range o.Jobs {
		p := o.Placed[i]
		var nodes, gpus []string
		for _, a := range p.Nodes {
			nodes = append(nodes, a.Node)
			if len(a.GPUs) == 0 {
				continue
			}
			ids := make([]string, len(a.GPUs))
			for k, g := range a.GPUs {
				ids[k] = strconv.Itoa(g)
			}
			g := a.Node + ":" + strings.Join(ids, "+")
			if a.GPUShare > 0 {
				g += "*" + strconv.FormatFloat(a.GPUShare, 'f', -1, 64)
			}
			gpus = append(gpus, g)
		}
		row[0] = strconv.FormatUint(j.ID, 10)
		row[1], row[2], row[3] = secs(j.Submit), secs(p.Start), secs(p.End)
		row[4] = strconv.Itoa(len(p.Nodes))
		row[5], row[6] = strings.Join(nodes, ";"), strings.Join(gpus, ";")
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
