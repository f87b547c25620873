package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names inside a job's state directory (see the package doc).
const (
	recordFile  = "record.json"
	scriptFile  = "job.sh"
	shimPIDFile = "shim.pid"
	jobPIDFile  = "job.pid"
	cancelFile  = "cancel.json"
	resultFile  = "result.json"
	shimLogFile = "shim.log"
)

// record is what the agent writes before it starts anything: all the shim
// and a later agent need to know about the job.
type record struct {
	Spec         Spec          `json:"spec"`
	Isolation    Isolation     `json:"isolation"`
	CgroupParent string        `json:"cgroup_parent"`
	V2Mount      string        `json:"v2_mount,omitempty"`
	KillGrace    time.Duration `json:"kill_grace"`
	Created      time.Time     `json:"created"`
	// CRIUPath restores the job (Spec.RestoreFrom).
	CRIUPath string `json:"criu_path,omitempty"`
}

// cancelRequest is written before a cancel kills anything, so whoever writes
// the result (shim or agent) knows the job was cancelled and why.
type cancelRequest struct {
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

func writeJSON(path string, v any) error {
	return writeJSONFile(path, v, true)
}

// writeVolatileJSON is writeJSON for files that only need to survive the
// writer's crash, not the machine's (see writeFileAtomic).
func writeVolatileJSON(path string, v any) error {
	return writeJSONFile(path, v, false)
}

func writeJSONFile(path string, v any, durable bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600, durable)
}

// readJSON decodes path into v; the error wraps os.ErrNotExist when the file
// is absent.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func readResult(dir string) (Outcome, bool, error) {
	var o Outcome
	err := readJSON(filepath.Join(dir, resultFile), &o)
	if errors.Is(err, os.ErrNotExist) {
		return o, false, nil
	}
	return o, err == nil, err
}

func readCancel(dir string) (cancelRequest, bool) {
	var c cancelRequest
	err := readJSON(filepath.Join(dir, cancelFile), &c)
	return c, err == nil
}
