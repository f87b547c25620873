package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hpc-sched/hpc/api"
)

// smallDisk is a tmpfs of a few MiB that a test can fill to the last
// byte and empty again: the server's data disk running full, for real.
type smallDisk struct {
	t      *testing.T
	dir    string
	filler string
}

func newSmallDisk(t *testing.T, size string) *smallDisk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return &smallDisk{t: t, dir: dir, filler: filepath.Join(dir, "filler")}
}

// fill writes to a filler file until the disk refuses with ENOSPC.
func (d *smallDisk) fill() {
	d.t.Helper()
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				d.t.Fatalf("fill the disk: %v", err)
			}
			return
		}
	}
}

// free removes the filler: the disk has room again.
func (d *smallDisk) free() {
	d.t.Helper()
	if err := os.Remove(d.filler); err != nil {
		d.t.Fatal(err)
	}
}

// exhaustStore makes every further commit of more than a page or two
// need new space. bbolt reuses pages it freed earlier, which a full disk
// still has: a read transaction held open keeps every page freed from now
// on from being reused, and small submits until the disk refuses one use
// up those free already. The returned func ends the read transaction.
func exhaustStore(t *testing.T, h *harness) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	go h.st.Jobs(func(uint64, []byte) error {
		close(held)
		<-done
		return errors.New("stop")
	})
	<-held
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release)
	for i := 0; ; i++ {
		_, err := h.srv.Submit(Caller{}, h.submitReq(jobSrc("")))
		if err == nil {
			if i > 100_000 {
				t.Fatal("the store never ran out of space")
			}
			continue
		}
		if !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("submit on a full disk: %v", err)
		}
		return release
	}
}

// newHarnessOn is newHarness with the store in dir. The database file is
// extended (sparsely, as bbolt grows it itself) beyond the disk's size so
// that bbolt maps it whole at once and never remaps, which would wait for
// the read transaction exhaustStore holds.
func newHarnessOn(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, dbPath: filepath.Join(dir, "hpc.db"), cwd: t.TempDir(), reg: cpuNode("n1")}
	h.open(nil)
	h.close()
	if err := os.Truncate(h.dbPath, 64<<20); err != nil {
		t.Fatal(err)
	}
	h.open(&fakeAgent{})
	t.Cleanup(h.close)
	return h
}

// bigJobSrc is a job whose stored record spans many pages: rewriting it
// needs fresh pages at the end of the database file, which a full disk
// can't give (small records could reuse pages bbolt freed earlier).
func bigJobSrc() string {
	script := strings.Repeat("echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 4000)
	return "job \"big\" {\n  task {\n    script = <<-EOT\n" + script + "    EOT\n  }\n}\n"
}

// Found as: with the data disk full, `cancel` answered 500, yet `show`
// said CANCELLED and after a restart the job ran; `hold` the same. Now a
// refused change is refused with a clear error, and nothing changed, as
// the server shows it before and after a restart.
func TestFullDiskRefusesChangesAndChangesNothing(t *testing.T) {
	disk := newSmallDisk(t, "4m")
	h := newHarnessOn(t, testConfig(), disk.dir)
	ctx := context.Background()
	ids := []uint64{h.submit(bigJobSrc())[0], h.submit(bigJobSrc())[0]}
	before := map[uint64]job{}
	for _, id := range ids {
		before[id] = h.job(id)
	}

	disk.fill()
	release := exhaustStore(t, h)
	actions := []struct {
		name string
		do   func(id uint64) (api.Job, error)
	}{
		{"cancel", func(id uint64) (api.Job, error) { return h.client.Cancel(ctx, id) }},
		{"hold", func(id uint64) (api.Job, error) { return h.client.Hold(ctx, id) }},
	}
	for _, a := range actions {
		for _, id := range ids {
			_, err := a.do(id)
			var ae *api.APIError
			if !errors.As(err, &ae) || ae.Status != 503 || !strings.Contains(ae.Message, "nothing changed") ||
				!strings.Contains(ae.Message, "no space left on device") {
				t.Fatalf("%s job %d with a full disk: %v, want 503 saying nothing changed and why", a.name, id, err)
			}
			aj, err := h.client.Job(ctx, id)
			if err != nil || aj.State != api.StatePending || len(aj.History) != 1 {
				t.Fatalf("after a refused %s, job %d shows %s %v (%v), want PENDING as before", a.name, id, aj.State, states(aj.History), err)
			}
		}
	}
	// The scheduler's start can't be committed either: nothing launches.
	h.schedule()
	if got := h.agent.launchedIDs(); len(got) != 0 {
		t.Fatalf("launched %v with a full disk, though the start could not be stored", got)
	}
	if _, err := h.srv.updateJob(nil, ids[0], func(j *job) error { j.ownSpec(); j.Priority = 7; return nil }); !errors.Is(err, ErrStore) {
		t.Fatalf("a change with a full disk: %v, want ErrStore", err)
	}
	for _, id := range ids {
		if j := h.job(id); j.State != api.StatePending || j.Priority != before[id].Priority || len(j.History) != 1 {
			t.Fatalf("job %d in memory after refused changes: %s priority %d history %v", id, j.State, j.Priority, states(j.History))
		}
	}

	disk.free()
	release()
	h.restart(&fakeAgent{})
	for _, id := range ids {
		if j := h.job(id); j.State != api.StatePending || len(j.History) != 1 || j.CancelRequested {
			t.Fatalf("after a restart job %d is %s %v (cancel requested %v), want PENDING as before", id, j.State, states(j.History), j.CancelRequested)
		}
	}
	// With room again the same actions work.
	if aj, err := h.client.Cancel(ctx, ids[0]); err != nil || aj.State != api.StateCancelled {
		t.Fatalf("cancel once the disk has room: %v %s", err, aj.State)
	}
	if aj, err := h.client.Hold(ctx, ids[1]); err != nil || aj.State != api.StateHeld {
		t.Fatalf("hold once the disk has room: %v %s", err, aj.State)
	}
}

// A refused change of one job doesn't keep other changes of it waiting:
// the write slot is handed back on every path.
func TestRefusedChangeReleasesWriteSlot(t *testing.T) {
	h := newHarness(t, testConfig())
	id := h.submit(jobSrc(""))[0]
	boom := fmt.Errorf("refused: %w", ErrInvalid)
	if _, err := h.srv.updateJob(nil, id, func(j *job) error { j.ownSpec(); j.Priority = 9; return boom }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want the change's own error", err)
	}
	if j := h.job(id); j.Priority == 9 {
		t.Fatal("a refused change showed through")
	}
	if _, err := h.client.Hold(context.Background(), id); err != nil {
		t.Fatalf("hold after a refused change: %v", err)
	}
}
