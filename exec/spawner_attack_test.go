package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestSpawnerSocketRefusesUsers: a job (running as its user) that connects
// to the spawner's socket and asks it to launch a job as root gets
// nothing, even when hpcd (and so the spawner) runs with umask 0.
func TestSpawnerSocketRefusesUsers(t *testing.T) {
	if _, err := os.Stat("/usr/bin/perl"); err != nil {
		t.Skip("needs perl to play the hostile job")
	}
	t.Run("spawner/check", func(t *testing.T) {
		old := syscall.Umask(0) // a daemon started with umask 0
		te := newTestExecutor(t, "")
		if te.sp == nil {
			syscall.Umask(old)
			t.Skip("no spawner on this host")
		}
		// Start the spawner now, under umask 0.
		if o := te.run(t, te.spec("true")); o.State != StateCompleted {
			syscall.Umask(old)
			t.Fatalf("first job: %+v", o)
		}
		syscall.Umask(old)
		pwned := filepath.Join(te.dir, "pwned")
		evil := te.spec("touch " + pwned + "; id > " + pwned)
		evil.UID, evil.GID, evil.Groups, evil.User = 0, 0, nil, "root"
		evil.JobID += 100000
		msg, err := json.Marshal(spawnMsg{Op: "launch", Seq: 1, Rec: &record{Spec: evil}})
		if err != nil {
			t.Fatal(err)
		}
		msgFile := filepath.Join(te.dir, "msg.json")
		if err := os.WriteFile(msgFile, append(msg, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(te.sp.dir, spawnerSock)
		// Twice: as made, then with the socket opened to everyone by
		// mistake (the spawner checks its peer too).
		for _, mode := range []os.FileMode{0, 0o777} {
			if mode != 0 {
				if err := os.Chmod(sock, mode); err != nil {
					t.Fatal(err)
				}
			} else if fi, err := os.Stat(sock); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("spawner socket mode %v: others may connect", fi.Mode())
			}
			attack := te.spec(fmt.Sprintf(`perl -MIO::Socket::UNIX -e '
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => "%s") or do { print "refused: $!\n"; exit 0 };
open(my $m, "<", "%s") or die; my $l = <$m>; print {$s} $l; $s->flush; my $r = <$s>; print "reply: ", (defined $r ? $r : "none\n");'`, sock, msgFile))
			o := te.run(t, attack)
			out := readFile(t, attack.Stdout)
			t.Logf("hostile job (socket mode %v): %+v\n%s%s", mode, o.State, out, readFile(t, attack.Stderr))
			if b, err := os.ReadFile(pwned); err == nil {
				t.Fatalf("a job as nobody made the spawner run a job as root: %s", b)
			}
			if strings.Contains(out, `"pid"`) {
				t.Fatalf("the spawner accepted a launch from a user's job: %s", out)
			}
		}
		// The agent itself is still served.
		if o := te.run(t, te.spec("true")); o.State != StateCompleted {
			t.Errorf("job after the attack: %+v", o)
		}
	})
}

// killSpawner kill -9s the executor's spawner and waits until it is gone.
func killSpawner(t *testing.T, te *testExec) {
	t.Helper()
	id := te.spawnerIdentity(t)
	if err := syscall.Kill(id.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spawner's death", func() bool {
		st, _, _, err := procStat(id.PID)
		return err != nil || st == 'Z'
	})
}

// TestSpawnerAdoptedSlotGetsFullLimits: after a kill -9 of an idle
// spawner, the next launch reaches a new spawner at once (the dead
// connection is not reported as a failed launch), the slot of the released
// job is reused (the journal's history does not hold it for ever: it was
// leaked, and its cgroup too), and it gets the next job's limits in full:
// the last job's CPU set, memory and pids limits do not stay on it.
func TestSpawnerAdoptedSlotGetsFullLimits(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
	spawnerCheck(t, func(t *testing.T, te *testExec) {
		a := te.spec("true")
		a.CPUSet, a.Memory, a.Pids = []int{1}, 64<<20, 40
		if o := te.run(t, a); o.State != StateCompleted {
			t.Fatalf("first job: %+v", o)
		}
		if err := te.Release(a.JobID); err != nil {
			t.Fatal(err)
		}
		killSpawner(t, te)
		b := te.spec(`cg=$(sed -n 's/.*:memory://p' /proc/self/cgroup)
sed -n 's/Cpus_allowed_list:[[:space:]]*//p' /proc/self/status
cat /sys/fs/cgroup/memory$cg/memory.limit_in_bytes /sys/fs/cgroup/pids$cg/pids.max; echo $cg >&2`)
		if o := te.run(t, b); o.State != StateCompleted {
			t.Fatalf("second job: %+v %s", o, readFile(t, b.Stderr))
		}
		// The slot of a released job is free after a restart, not held
		// for ever by the journal's history.
		if got, want := strings.TrimSpace(readFile(t, b.Stderr)), "/"+te.parent+"/slot-1"; got != want {
			t.Errorf("second job in %s, want the first job's slot %s", got, want)
		}
		cpus := strings.TrimSpace(readFile(t, filepath.Join(v1Root, "cpuset", te.parent, "cpuset.cpus")))
		want := fmt.Sprintf("%s\n9223372036854771712\n%d\n", cpus, te.pids)
		if got := readFile(t, b.Stdout); got != want {
			t.Errorf("job without limits in an adopted slot sees (CPUs, memory limit, pids.max)\n%s want\n%s", got, want)
		}
	})
}
