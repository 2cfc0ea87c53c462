// Package statefile writes the small files the daemon keeps in its state
// directory (keys, push subscriptions, the token registry) so that a reader,
// or the daemon after a power cut, sees the old content or the new, never
// a mix.
package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes data to name with mode through a temporary file in the same
// directory, synced, then renamed over name, and syncs the directory.
func Write(name string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	werr := OwnLikeDir(tmp, dir)
	if werr == nil {
		_, werr = tmp.Write(data)
	}
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// OwnLikeDir gives f to the owner of dir when root writes into a directory
// of another user: `sudo intercomd usersig` or `sudo intercomd cert` on a
// board whose daemon runs as User=intercomd must not leave a root-owned file
// (the token registry, a key) that the daemon cannot read at its next start.
func OwnLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	return f.Chown(int(sys.Uid), int(sys.Gid))
}
