package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testAgentEnv makes the test binary act as an agent that launches one job,
// prints its id and then idles until it is killed -9 by the test.
const testAgentEnv = "HPC_EXEC_TEST_AGENT"

func runTestAgent() int {
	var req struct {
		Config Config
		Spec   Spec
	}
	if err := json.Unmarshal([]byte(os.Getenv(testAgentEnv)), &req); err != nil {
		fmt.Println("err", err)
		return 1
	}
	e, err := New(req.Config, slog.Default())
	if err != nil {
		fmt.Println("err", err)
		return 1
	}
	if _, err := e.Launch(context.Background(), req.Spec); err != nil {
		fmt.Println("err", err)
		return 1
	}
	fmt.Println("launched")
	time.Sleep(time.Hour)
	return 0
}

// TestAdoptAfterAgentKill: an agent process launches jobs and is killed -9;
// a second executor on the same state dir adopts them, both the one still
// running and the one that finished while no agent watched, and gets their
// real exit status.
func TestAdoptAfterAgentKill(t *testing.T) {
	t.Parallel()
	te := newTestExecutor(t, "")
	gate := filepath.Join(te.dir, "go")
	script := fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done; exit 7", gate)
	running, finished := te.spec(script), te.spec(script)
	cfg := te.cfg
	cfg.ShimPath = "" // the agent's own binary: this test binary
	for _, s := range []Spec{running, finished} {
		req, _ := json.Marshal(map[string]any{"Config": cfg, "Spec": s})
		agent := osexec.Command("/proc/self/exe")
		agent.Env = append(os.Environ(), testAgentEnv+"="+string(req))
		out, err := agent.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		n, _ := out.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "launched") {
			agent.Process.Kill()
			agent.Wait()
			t.Fatalf("agent: %q", buf[:n])
		}
		if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		agent.Wait()
	}
	if n := len(jobProcesses(running.JobID)); n == 0 {
		t.Fatalf("job %d did not survive the agent's death", running.JobID)
	}

	// Open the gate; the "finished" job ends with nobody watching.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unwatched job's result", func() bool { return outcomeOnDisk(te.Executor, finished.JobID) })

	e2, err := New(te.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	known, err := e2.Known()
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 2 {
		t.Errorf("Known = %v, want both jobs", known)
	}
	for _, s := range []Spec{running, finished} {
		h, err := e2.Adopt(s.JobID)
		if err != nil {
			t.Fatalf("Adopt %d: %v", s.JobID, err)
		}
		o := wait(t, h)
		if o.State != StateFailed || o.ExitCode != 7 {
			t.Errorf("adopted job %d: outcome %+v, want FAILED exit 7", s.JobID, o)
		}
	}
	if _, err := e2.Adopt(999999999); err == nil || !errors.Is(err, ErrUnknownJob) {
		t.Errorf("Adopt(unknown) = %v, want ErrUnknownJob", err)
	}
}
