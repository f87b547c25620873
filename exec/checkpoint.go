package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// prepareCheckpointDir makes the job's checkpoint directory, owned by the
// job's user and private to them, before anything of the job runs. It is
// kept across the job's restarts: an existing one is reused only when it
// is a real directory of that user (never a symlink or someone else's,
// which would hand the job's state to another user).
func prepareCheckpointDir(s Spec) error {
	dir := s.CheckpointDir
	if dir == "" || os.Geteuid() != 0 {
		return nil // the init stage makes it as the user
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return fmt.Errorf("job %d: checkpoint root: %w", s.JobID, err)
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		if err := os.Lchown(dir, int(s.UID), int(s.GID)); err != nil {
			return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
		}
		return nil
	}
	if !os.IsExist(err) {
		return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("job %d: checkpoint directory: %w", s.JobID, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != s.UID {
		return fmt.Errorf("job %d: %w: checkpoint directory %s exists but is not a directory of uid %d", s.JobID, ErrInvalidSpec, dir, s.UID)
	}
	return nil
}
