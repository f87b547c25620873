package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
