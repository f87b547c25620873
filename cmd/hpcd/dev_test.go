package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnixReplacesOnlyDeadSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "hpcd-listen-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen on a regular file: err = %v, want a refusal", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Fatalf("the file at --listen was touched: %q, %v", b, err)
	}

	sock := filepath.Join(dir, "s")
	ln, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(sock); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second listener: err = %v, want 'already listening'", err)
	}
	ln.Close()
	ln, err = listenUnix(sock)
	if err != nil {
		t.Fatalf("listen after the first listener closed: %v", err)
	}
	ln.Close()
}

func TestCgroupParentDiffersPerDataDir(t *testing.T) {
	a, b := cgroupParent("/var/lib/hpc"), cgroupParent("/tmp/other")
	if a == b || !strings.HasPrefix(a, "hpc/") || cgroupParent("/var/lib/hpc") != a {
		t.Fatalf("cgroupParent: %q and %q; want stable, distinct, under hpc/", a, b)
	}
}

// A bad flag is refused before anything is created on disk.
func TestBadFlagsCreateNothing(t *testing.T) {
	for _, args := range [][]string{
		{"--isolation", "full"},
		{"--policy", "lifo"},
		{"--log-level", "loud"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		code := run(append([]string{"hpcd", "dev", "--data-dir", dir, "--listen", filepath.Join(t.TempDir(), "s")}, args...))
		if code != 2 {
			t.Errorf("hpcd dev %v: exit %d, want 2", args, code)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("hpcd dev %v created %s", args, dir)
		}
	}
}
