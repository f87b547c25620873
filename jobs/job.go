package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Bounds on job file values. They reject the absurd (a typo of three extra
// zeros) while leaving room for any real cluster.
const (
	maxPriority    = 1000
	maxNodes       = 10000
	maxCPUs        = 4096
	minMemory      = int64(1 << 20)
	maxMemory      = int64(64 << 40)
	maxGPUs        = 64
	maxGPUMemory   = int64(1 << 40)
	maxArrayCount  = 100000
	maxRestarts    = 1000
	maxFeatures    = 32
	maxArgs        = 4096
	maxEnv         = 4096
	maxPatternLen  = 4096
	maxPathLen     = 4096
	maxScriptLen   = 1 << 20
	maxModelLen    = 128
	minInterval    = time.Second
	minWalltime    = time.Second
	maxJobNameLen  = 128
	maxLabelLength = 64
)

var (
	jobNameRE = charsetMatcher{1, 128, isNameChar, isNameChar}        // ^[A-Za-z0-9_.-]{1,128}$
	labelRE   = charsetMatcher{1, 64, isNameChar, isNameChar}         // ^[A-Za-z0-9_.-]{1,64}$
	envKeyRE  = charsetMatcher{1, 1 << 30, isIdentStart, isIdentChar} // ^[A-Za-z_][A-Za-z0-9_]*$
)

var jobSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "account"}, {Name: "priority"}, {Name: "walltime"}, {Name: "nodes"},
		{Name: "features"}, {Name: "requeue"}, {Name: "output"}, {Name: "error"},
		{Name: "depends_on"}, {Name: "cancel_signal"},
		{Name: "preemptible"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "resources"}, {Type: "task"}, {Type: "checkpoint"}, {Type: "array"},
	},
}

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cpus"}, {Name: "memory"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "gpu"}},
}

var gpuSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "count"}, {Name: "model"}, {Name: "memory"}, {Name: "link"}, {Name: "share"}},
}

var taskSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "command"}, {Name: "args"}, {Name: "script"}, {Name: "env"}, {Name: "workdir"},
		{Name: "script_file"},
	},
}

var checkpointSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "mode"}, {Name: "signal"}, {Name: "warn"}, {Name: "interval"}, {Name: "max_restarts"},
		{Name: "retry_on_exit"}, {Name: "on_failure"},
	},
}

var arraySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "count"}, {Name: "indices"}, {Name: "max_running"}},
}

// decodeJob decodes and validates the job block. It returns a Spec even when
// it reported errors; Parse discards it then.
func decodeJob(block *hcl.Block, ctx *hcl.EvalContext, filename string, opt Options) (*Spec, hcl.Diagnostics) {
	d := &decoder{ctx: ctx, filename: filename, opt: opt}
	spec := &Spec{
		Name:      d.jobName(block),
		Priority:  DefaultPriority,
		Nodes:     DefaultNodes,
		Resources: Resources{CPUs: DefaultCPUs, Memory: DefaultMemory, GPU: GPU{Link: DefaultGPULink}},
		Task:      Task{Env: map[string]string{}},
		Output:    DefaultOutput,
		Error:     DefaultError,
	}
	if !jobNameRE.MatchString(spec.Name) {
		d.errorf(block.LabelRanges[0], "Invalid job name", "Job name %q must be 1 to %d characters of letters, digits, '_', '.' and '-'.", truncate(spec.Name), maxJobNameLen)
	}

	c, blocks := d.content(block.Body, jobSchema)
	attrs := c.Attributes
	if a := attrs["account"]; a != nil {
		if s, ok := d.str(a, "account"); ok {
			if !labelRE.MatchString(s) {
				d.errorf(a.Expr.Range(), "Invalid value for account", "account must be 1 to %d characters of letters, digits, '_', '.' and '-'; leave it out to use your primary group.", maxLabelLength)
			}
			spec.Account = s
		}
	}
	if a := attrs["priority"]; a != nil {
		if n, ok := d.integer(a, "priority", 0, maxPriority); ok {
			spec.Priority = n
		}
	}
	if a := attrs["walltime"]; a != nil {
		if w, ok := d.duration(a, "walltime", minWalltime, maxDuration); ok {
			spec.Walltime = w
		}
	}
	if a := attrs["nodes"]; a != nil {
		if n, ok := d.integer(a, "nodes", 1, maxNodes); ok {
			spec.Nodes = n
		}
	}
	if a := attrs["features"]; a != nil {
		spec.Features = d.features(a)
	}
	if a := attrs["requeue"]; a != nil {
		spec.Requeue, _ = d.boolean(a, "requeue")
	}
	if a := attrs["preemptible"]; a != nil {
		spec.Preemptible, _ = d.boolean(a, "preemptible")
	}
	if a := attrs["output"]; a != nil {
		spec.Output = d.pattern(a, "output", spec.Output)
	}
	if a := attrs["error"]; a != nil {
		spec.Error = d.pattern(a, "error", spec.Error)
	}
	if a := attrs["depends_on"]; a != nil {
		spec.DependsOn = d.dependsOn(a)
	}
	if a := attrs["cancel_signal"]; a != nil {
		spec.CancelSignal = d.cancelSignal(a)
	}

	if b := blocks["resources"]; b != nil {
		d.resources(b, &spec.Resources)
	}
	if b := blocks["task"]; b != nil {
		d.task(b, &spec.Task)
	} else {
		d.errorf(block.DefRange, "Missing task block", `A job needs a task block saying what to run: task { ... } holding command = "/bin/echo" (or script = "...") on a line of its own.`)
	}
	if b := blocks["checkpoint"]; b != nil {
		spec.Checkpoint = d.checkpoint(b, spec.Walltime, attrs["walltime"] != nil)
	}
	if b := blocks["array"]; b != nil {
		spec.Array = d.array(b)
	}
	return spec, d.diags
}

func (d *decoder) features(a *hcl.Attribute) []string {
	list, ranges, ok := d.strList(a, "features", maxFeatures)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for i, f := range list {
		if !labelRE.MatchString(f) {
			d.errorf(ranges[i], "Invalid value for features", "Feature %q must be 1 to %d characters of letters, digits, '_', '.' and '-'.", truncate(f), maxLabelLength)
			continue
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func (d *decoder) pattern(a *hcl.Attribute, what, def string) string {
	s, ok := d.str(a, what)
	if !ok {
		return def
	}
	if s == "" || len(s) > maxPatternLen {
		d.errorf(a.Expr.Range(), "Invalid value for "+what, `%s must be a file name pattern of 1 to %d bytes, e.g. "hpc-%%j.out" (%%j job id, %%a array index, %%x job name, %%u user).`, what, maxPatternLen)
	}
	return s
}

func (d *decoder) resources(b *hcl.Block, r *Resources) {
	c, blocks := d.content(b.Body, resourcesSchema)
	if a := c.Attributes["cpus"]; a != nil {
		if n, ok := d.integer(a, "cpus", 1, maxCPUs); ok {
			r.CPUs = n
		}
	}
	if a := c.Attributes["memory"]; a != nil {
		if n, ok := d.size(a, "memory", minMemory, maxMemory); ok {
			r.Memory = n
		}
	}
	gb := blocks["gpu"]
	if gb == nil {
		return
	}
	gc, _ := d.content(gb.Body, gpuSchema)
	r.GPU.Count = 1 // a gpu block asks for a GPU unless it says otherwise
	if a := gc.Attributes["count"]; a != nil {
		if n, ok := d.integer(a, "gpu.count", 0, maxGPUs); ok {
			r.GPU.Count = n
		}
	}
	if a := gc.Attributes["model"]; a != nil {
		if s, ok := d.str(a, "gpu.model"); ok {
			s = strings.TrimSpace(s)
			if s == "" || len(s) > maxModelLen {
				d.errorf(a.Expr.Range(), "Invalid value for gpu.model", `gpu.model must be 1 to %d characters, e.g. "H100"; leave it out to accept any model.`, maxModelLen)
			}
			r.GPU.Model = s
		}
	}
	if a := gc.Attributes["memory"]; a != nil {
		if n, ok := d.size(a, "gpu.memory", 0, maxGPUMemory); ok {
			r.GPU.Memory = n
		}
	}
	if a := gc.Attributes["link"]; a != nil {
		if s, ok := d.str(a, "gpu.link"); ok {
			switch s {
			case "any", "nvlink":
				r.GPU.Link = s
			default:
				d.errorf(a.Expr.Range(), "Invalid value for gpu.link", `gpu.link must be "any" or "nvlink"; got %q.`, truncate(s))
			}
		}
	}
	if a := gc.Attributes["count"]; a != nil && r.GPU.Count == 0 && (r.GPU.Model != "" || r.GPU.Memory != 0 || r.GPU.Link != DefaultGPULink) {
		d.errorf(a.Expr.Range(), "Invalid value for gpu.count", "gpu.count is 0 but model, memory or link are set: ask for at least one GPU or remove the gpu block.")
	}
	d.gpuShare(gc, &r.GPU)
}

func (d *decoder) task(b *hcl.Block, t *Task) {
	c, _ := d.content(b.Body, taskSchema)
	attrs := c.Attributes
	cmd, script, file := attrs["command"], attrs["script"], attrs["script_file"]
	switch {
	case cmd != nil && script != nil:
		d.errorf(script.NameRange, "Conflicting task command and script", "A task has exactly one of command (a program and args) or script (run with its #! interpreter, else /bin/sh); remove one.")
	case file != nil && (cmd != nil || script != nil):
		d.errorf(file.NameRange, "Conflicting task script_file", "A task has exactly one of command, script or script_file; remove the others.")
	case cmd == nil && script == nil && file == nil:
		d.errorf(b.DefRange, "Missing task command", `A task needs command = "program" (with args), script = <<-EOT ... EOT, or script_file = "run.sh".`)
	}
	if file != nil {
		if name, text, ok := d.scriptFile(file); ok {
			t.ScriptFile, t.Script = name, text
			d.checkShebang(file.Expr.Range(), text)
		}
	}
	if cmd != nil {
		if s, ok := d.str(cmd, "command"); ok {
			if strings.TrimSpace(s) == "" || len(s) > maxPathLen {
				d.errorf(cmd.Expr.Range(), "Invalid value for command", "command must name a program (1 to %d bytes), e.g. \"/bin/echo\" or \"python\".", maxPathLen)
			}
			t.Command = s
		}
	}
	if script != nil {
		if s, ok := d.str(script, "script"); ok {
			if strings.TrimSpace(s) == "" || len(s) > maxScriptLen {
				d.errorf(script.Expr.Range(), "Invalid value for script", "script must hold 1 byte to 1 MiB of shell; for more, save it as a file and run it with command.")
			}
			t.Script = s
			d.checkShebang(script.Expr.Range(), s)
		}
	}
	if a := attrs["args"]; a != nil {
		if (script != nil || file != nil) && cmd == nil {
			d.errorf(a.NameRange, "Invalid task args", "args go with command; a script takes its arguments inline. Use command = \"/bin/sh\" with args = [\"script.sh\", ...] to pass arguments.")
		}
		if list, _, ok := d.strList(a, "args", maxArgs); ok {
			t.Args = list
		}
	}
	if a := attrs["env"]; a != nil {
		d.env(a, t.Env)
	}
	if a := attrs["workdir"]; a != nil {
		if s, ok := d.str(a, "workdir"); ok {
			if s == "" || len(s) > maxPathLen {
				d.errorf(a.Expr.Range(), "Invalid value for workdir", "workdir must be a directory path of 1 to %d bytes; leave it out to run in the directory you submit from.", maxPathLen)
			}
			t.Workdir = s
		}
	}
}

func (d *decoder) env(a *hcl.Attribute, env map[string]string) {
	pairs, ok := d.strMap(a, "env")
	if !ok {
		return
	}
	if len(pairs) > maxEnv {
		d.errorf(a.Expr.Range(), "Invalid value for env", "env may hold at most %d variables.", maxEnv)
		return
	}
	for _, p := range pairs {
		switch {
		case !envKeyRE.MatchString(p.key):
			d.errorf(p.keyRange, "Invalid environment variable name", "%q is not a valid shell variable name: use letters, digits and '_', not starting with a digit.", truncate(p.key))
		case ReservedEnv(p.key):
			d.errorf(p.keyRange, "Invalid environment variable name", "%s: names starting with HPC_ are set by the batch system; choose another name.", p.key)
		default:
			if _, dup := env[p.key]; dup {
				d.errorf(p.keyRange, "Duplicate environment variable", "%s is set twice in env; keep one.", p.key)
			}
			env[p.key] = p.value
		}
	}
}

// checkpoint decodes the checkpoint block. walltime is the job's (0 if not
// given); warn must fall inside it.
func (d *decoder) checkpoint(b *hcl.Block, walltime time.Duration, hasWalltime bool) *Checkpoint {
	c, _ := d.content(b.Body, checkpointSchema)
	attrs := c.Attributes
	ck := &Checkpoint{Mode: DefaultCkptMode, MaxRestarts: DefaultMaxRestarts}
	if a := attrs["mode"]; a != nil {
		if s, ok := d.str(a, "checkpoint.mode"); ok {
			switch s {
			case "signal", "criu":
				ck.Mode = s
			default:
				d.errorf(a.Expr.Range(), "Invalid value for checkpoint.mode", `checkpoint.mode must be "signal" (the job saves its own state when signalled) or "criu" (transparent); got %q.`, truncate(s))
			}
		}
	}
	if ck.Mode == "signal" {
		ck.Signal = DefaultCkptSignal
	}
	if a := attrs["signal"]; a != nil {
		if s, ok := d.str(a, "checkpoint.signal"); ok {
			if sig, err := normaliseSignal(s); err != nil {
				d.errorf(a.Expr.Range(), "Invalid value for checkpoint.signal", "%s", err)
			} else {
				ck.Signal = sig
			}
		}
	}
	if a := attrs["warn"]; a != nil {
		if w, ok := d.duration(a, "checkpoint.warn", time.Second, maxDuration); ok {
			ck.Warn = w
			if walltime > 0 && w >= walltime {
				d.errorf(a.Expr.Range(), "Invalid value for checkpoint.warn", "checkpoint.warn (%s) must be shorter than the walltime (%s): the job needs time to run before it is asked to checkpoint.", w, walltime)
			}
		}
	}
	if attrs["warn"] == nil {
		ck.Warn = DefaultCkptWarn
		if hasWalltime && walltime > 0 && walltime/2 < ck.Warn {
			ck.Warn = walltime / 2
		}
	}
	if a := attrs["interval"]; a != nil {
		if iv, ok := d.duration(a, "checkpoint.interval", 0, maxDuration); ok {
			if iv != 0 && iv < minInterval {
				d.errorf(a.Expr.Range(), "Invalid value for checkpoint.interval", `checkpoint.interval must be "0" (no periodic checkpoints) or at least 1s; got %s.`, iv)
			}
			ck.Interval = iv
		}
	}
	if a := attrs["max_restarts"]; a != nil {
		if n, ok := d.integer(a, "checkpoint.max_restarts", 0, maxRestarts); ok {
			ck.MaxRestarts = n
		}
	}
	if a := attrs["retry_on_exit"]; a != nil {
		ck.RetryOnExit = d.retryOnExit(a)
	}
	if ck.Mode == "criu" {
		ck.OnFailure = "requeue"
	}
	if a := attrs["on_failure"]; a != nil {
		if f := d.onFailure(a); f != "" {
			ck.OnFailure = f
		}
	}
	return ck
}

func (d *decoder) array(b *hcl.Block) *Array {
	c, _ := d.content(b.Body, arraySchema)
	arr := &Array{}
	countOK := false
	ca, ia := c.Attributes["count"], c.Attributes["indices"]
	switch {
	case ca != nil && ia != nil:
		d.errorf(ia.NameRange, "Conflicting array count and indices", `An array has count = N (indices 0..N-1) or indices = "1-99:2", not both.`)
	case ca == nil && ia == nil:
		d.errorf(b.DefRange, "Missing array count", `An array needs count = N (indices 0..N-1) or indices = "1-99:2".`)
	}
	if ca != nil {
		arr.Count, countOK = d.integer(ca, "array.count", 1, maxArrayCount)
	} else if ia != nil {
		arr.Indices, countOK = d.indices(ia)
		arr.Count = len(arr.Indices)
	}
	arr.MaxRunning = arr.Count
	if a := c.Attributes["max_running"]; a != nil {
		hi := int64(maxArrayCount)
		if countOK {
			hi = int64(arr.Count)
		}
		if n, ok := d.integer(a, "array.max_running", 1, hi); ok {
			arr.MaxRunning = n
		}
	}
	return arr
}

// signals are the names checkpoint.signal accepts. SIGKILL and SIGSTOP are
// left out on purpose: a job cannot catch them, so they cannot ask it to
// save its state.
var signals = map[string]bool{
	"SIGHUP": true, "SIGINT": true, "SIGQUIT": true, "SIGABRT": true, "SIGUSR1": true,
	"SIGUSR2": true, "SIGPIPE": true, "SIGALRM": true, "SIGTERM": true, "SIGCONT": true,
	"SIGTSTP": true, "SIGTTIN": true, "SIGTTOU": true, "SIGURG": true, "SIGXCPU": true,
	"SIGXFSZ": true, "SIGVTALRM": true, "SIGPROF": true, "SIGWINCH": true, "SIGIO": true,
	"SIGPWR": true, "SIGSYS": true, "SIGTRAP": true,
}

// normaliseSignal turns "usr1", "USR1" or "SIGUSR1" into "SIGUSR1".
func normaliseSignal(s string) (string, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if name == "SIGKILL" || name == "SIGSTOP" {
		return "", fmt.Errorf("%s cannot be caught, so it cannot ask the job to checkpoint: use SIGUSR1, SIGUSR2 or SIGTERM", name)
	}
	if !signals[name] {
		return "", fmt.Errorf("unknown signal %q: use a name such as SIGUSR1, SIGUSR2 or SIGTERM", truncate(s))
	}
	return name, nil
}

// truncate shortens user text quoted back in messages.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
