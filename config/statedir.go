package config

import (
	"fmt"
	"path/filepath"
)

// DefaultStateDir is device.state_dir's default, used as root.
const DefaultStateDir = "/var/lib/intercomd"

// StateDir returns the directory for state created at run time and why it
// was chosen, for the log: systemd's $STATE_DIRECTORY (StateDirectory=)
// first; then device.state_dir when the file or a flag sets it; else
// DefaultStateDir for root (uid 0) and, for anyone else, the user's own
// state directory: $XDG_STATE_HOME/intercomd, else ~/.local/state/intercomd.
// It creates nothing.
func (c *Config) StateDir(uid int, getenv func(string) string) (dir, why string, err error) {
	if sd := getenv("STATE_DIRECTORY"); sd != "" {
		return filepath.SplitList(sd)[0], "$STATE_DIRECTORY", nil
	}
	set := c.Device.StateDir
	if set != "" && (set != DefaultStateDir || c.src != nil && c.src.has("device.state_dir")) {
		return set, "device.state_dir", nil
	}
	if uid == 0 {
		return DefaultStateDir, "default for root", nil
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "intercomd"), "not root: $XDG_STATE_HOME", nil
	}
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		return "", "", fmt.Errorf("state directory: not root, and neither $XDG_STATE_HOME nor $HOME is set: set device.state_dir or --state-dir")
	}
	return filepath.Join(home, ".local", "state", "intercomd"), "not root: ~/.local/state", nil
}
