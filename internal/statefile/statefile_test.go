package statefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Root writing into the daemon's state directory (sudo intercomd usersig on
// a board whose service runs as its own user) leaves files the daemon owns.
func TestRootWritesAsTheDirectorysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root")
		}
		t.Skip("SKIP: needs root to give a file to another user")
	}
	dir := t.TempDir()
	const uid, gid = 65534, 65534 // nobody, nogroup
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "tokens.json")
	if err := Write(name, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != uid || sys.Gid != gid || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: owner %d:%d mode %v, want %d:%d 0600", name, sys.Uid, sys.Gid, st.Mode().Perm(), uid, gid)
	}

	// A directory of root's own stays root's.
	rootDir := t.TempDir()
	if err := Write(filepath.Join(rootDir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(rootDir, "f")); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("a file in root's directory given away")
	}
}
