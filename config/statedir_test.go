package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStateDir(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("version: 1\ndevice:\n  state_dir: /var/lib/intercomd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	flagged := Default()
	flagged.Device.StateDir = "/srv/door"
	for _, tc := range []struct {
		name string
		c    *Config
		uid  int
		env  func(string) string
		want string
	}{
		{"root, no file", Default(), 0, env("HOME", "/root"), DefaultStateDir},
		{"user, no file, XDG", Default(), 1000, env("HOME", "/home/a", "XDG_STATE_HOME", "/x/state"), "/x/state/intercomd"},
		{"user, no file, HOME", Default(), 1000, env("HOME", "/home/a"), "/home/a/.local/state/intercomd"},
		{"user, relative XDG ignored", Default(), 1000, env("HOME", "/home/a", "XDG_STATE_HOME", "rel"), "/home/a/.local/state/intercomd"},
		{"systemd", Default(), 0, env("STATE_DIRECTORY", "/var/lib/intercomd2:/other"), "/var/lib/intercomd2"},
		{"systemd beats user", Default(), 1000, env("STATE_DIRECTORY", "/s", "HOME", "/home/a"), "/s"},
		{"set in the file", fromFile, 1000, env("HOME", "/home/a"), DefaultStateDir},
		{"set by a flag", flagged, 1000, env("HOME", "/home/a"), "/srv/door"},
	} {
		got, why, err := tc.c.StateDir(tc.uid, tc.env)
		if err != nil || got != tc.want || why == "" {
			t.Errorf("%s: %q (%s), %v; want %q", tc.name, got, why, err, tc.want)
		}
	}
	if _, _, err := Default().StateDir(1000, env()); err == nil {
		t.Error("no HOME and no XDG_STATE_HOME as a user: no error")
	}
}
