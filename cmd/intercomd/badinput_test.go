package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/config"
)

// Bad configuration and missing hardware give one clear error naming the
// thing, before anything runs: the daemon never runs half-configured.
func TestDaemonRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"wrong type", "version: 1\ncamera:\n  bitrate: lots\n", []string{"intercomd.yaml:3", "camera.bitrate"}},
		{"unknown key", "version: 1\ncalling:\n  invite_timout: 10s\n", []string{"intercomd.yaml:3", "invite_timout"}},
		{"missing version", "device:\n  name: door\n", []string{"version"}},
		{"external broker without url", "version: 1\nsignaling:\n  broker: external\n", []string{"signaling.external.url"}},
		{"GPIO line that does not exist", "version: 1\ngpio:\n  backend: chip\n  buttons: [{name: call, line: GPIO99}]\n  leds: []\n  relay: {line: \"\"}\n", []string{"gpio", "GPIO99"}},
		{"camera that cannot be opened", "version: 1\ncamera:\n  fallback_test_pattern: false\n  devices: [{name: porch, device: /dev/video9}]\ngpio: {backend: sim}\n", []string{"camera", "/dev/video9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "intercomd.yaml")
			// Free ports and a private state directory, after the lines under test.
			y := tc.yaml + "http: {listen: \"127.0.0.1:0\"}\n"
			if !strings.Contains(y, "device:") {
				y += "device: {state_dir: " + filepath.Join(dir, "state") + "}\n"
			}
			if !strings.Contains(y, "signaling:") {
				y += "signaling: {embedded: {listen: \"127.0.0.1:0\"}}\n"
			}
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			env := &cmdEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := dispatch(ctx, []string{"run", "--config", path}, env)
			if err == nil {
				t.Fatalf("the daemon ran with %s", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(stderr.String(), "intercomd ready") {
				t.Error("the daemon said ready")
			}
			// check-config agrees for the configuration errors.
			if _, cerr := config.Load(path); cerr != nil {
				if err := dispatch(ctx, []string{"check-config", path}, env); err == nil {
					t.Error("check-config accepted it")
				}
			}
		})
	}
}
