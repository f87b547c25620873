package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
)

// floodEnv makes the test binary a flood helper (runFlood) instead of
// running tests: "SOCKET COUNT".
const floodEnv = "HPC_E2E_FLOOD"

// runFlood opens COUNT keep-alive connections to SOCKET, each used for
// one request and then left idle, and holds them, as the hostile user
// did; it prints "ready" when they are open, and once its stdin closes,
// how many the server still held open.
func runFlood() int {
	f := strings.Fields(os.Getenv(floodEnv))
	n, _ := strconv.Atoi(f[1])
	type held struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []held
	for i, unanswered := 0, 0; i < n && unanswered < 20; i++ {
		c, err := net.DialTimeout("unix", f[0], 200*time.Millisecond)
		if err != nil {
			unanswered++
			continue
		}
		h := held{c, bufio.NewReader(c)}
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := io.WriteString(c, "GET "+api.RouteHealth+" HTTP/1.1\r\nHost: hpcd\r\n\r\n"); err == nil {
			if resp, err := http.ReadResponse(h.r, nil); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				unanswered = 0
			} else {
				unanswered++ // the server no longer accepts: it is out of descriptors
			}
		}
		c.SetDeadline(time.Time{})
		conns = append(conns, h)
	}
	fmt.Println("ready", len(conns))
	io.Copy(io.Discard, os.Stdin)
	open := 0
	for _, h := range conns {
		h.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := h.r.ReadByte(); err != nil && os.IsTimeout(err) {
			open++ // nothing came and no EOF: the server holds it
		}
	}
	fmt.Println("open", open)
	return 0
}

// Found as: a non-root user opened ~21,000 idle keep-alive connections; the
// daemon ran out of descriptors and other users' jobs ended FAILED with
// "release pipe: pipe2: too many open files". Now, with the daemon's
// descriptors limited to 1024 and another uid holding thousands of
// connections while jobs start, no job fails: with the per-user cap, or
// with only the descriptor reserve.
func TestDescriptorFloodFailsNoJob(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the flood runs as uid 65534 and hpcd's limits are set from outside")
	}
	tests := []struct {
		name    string
		flags   []string
		maxOpen int // of the flood's connections the server may hold
	}{
		{"per-user connection cap", nil, 64},
		{"descriptor reserve alone", []string{"--max-conns-per-user", "-1"}, 1024 - 256},
	}
	// The test binary is the flood helper; uid 65534 must be able to run it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(binDir, "flood")
	if err := os.WriteFile(helper, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, tt.flags...)
			lim := unix.Rlimit{Cur: 1024, Max: 1024}
			if err := unix.Prlimit(c.cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
				t.Fatal(err)
			}
			flood := exec.Command(helper)
			flood.Env = append(os.Environ(), floodEnv+"="+c.sock+" 3000")
			flood.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			stdin, err := flood.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := flood.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := flood.Start(); err != nil {
				t.Fatal(err)
			}
			defer flood.Wait()
			defer stdin.Close()
			lines := bufio.NewScanner(out)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready") {
				t.Fatalf("flood helper: %q", lines.Text())
			}

			cl := c.client()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var ids []uint64
			for i := 0; i < 20; i++ {
				resp, err := cl.Submit(ctx, c.submitRequest(`job "f" {
  walltime = "1m"
  task { script = "sleep 0.1; echo ok" }
}`))
				if err != nil {
					t.Fatalf("submit %d during the flood: %v", i, err)
				}
				ids = append(ids, resp.IDs...)
			}
			for _, id := range ids {
				j := c.waitState(id, 60*time.Second, api.StateCompleted, api.StateFailed, api.StateNodeFail, api.StateCancelled)
				if j.State != api.StateCompleted {
					t.Fatalf("job %d ended %s (%s) during a descriptor flood", id, j.State, j.Reason)
				}
				for _, tr := range j.History {
					if tr.State == api.StateNodeFail || tr.State == api.StateRequeued {
						t.Fatalf("job %d hit a host failure during the flood: %s %s", id, tr.State, tr.Reason)
					}
				}
			}
			stdin.Close()
			if !lines.Scan() {
				t.Fatal("flood helper gave no count")
			}
			var open int
			fmt.Sscanf(lines.Text(), "open %d", &open)
			if open > tt.maxOpen {
				t.Fatalf("the server held %d of the flood's connections, want at most %d", open, tt.maxOpen)
			}
		})
	}
}
