package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/gpio"
)

const gpioSectionYAML = `gpio:
  backend: BACKEND
  buttons: [{name: call, line: GPIO17}]
  # the door
  relay:
    line: GPIO5
    active_low: true
    pulse: 2s
  bell: {line: GPIO6, pulse: 1s}
`

// brokenElsewhere are files whose gpio section is fine and something else
// is not: relay-off exited 1 on each and drove nothing.
var brokenElsewhere = map[string]string{
	"wrong type":        "version: 1\ncamera:\n  bitrate: lots\n" + gpioSectionYAML,
	"unknown key":       "version: 1\n" + gpioSectionYAML + "calling:\n  invite_timout: 10s\n",
	"missing secret":    "version: 1\n" + gpioSectionYAML + "signaling:\n  embedded: {token_secret: {file: /nonexistent/secret}}\n",
	"not YAML any more": "version: 1\nmedia:\n  stun_servers: [stun:a\n\tbroken: {\n" + gpioSectionYAML + "audio:\n  volume: [\n",
	"no version":        gpioSectionYAML + "device: {name: door}\n",
	"buttons broken":    strings.Replace("version: 1\n"+gpioSectionYAML, "line: GPIO17", "line: GPIO17, bias: sideways", 1),
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "intercomd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRelayConfigFromGPIOSectionAlone(t *testing.T) {
	valid := writeConfig(t, "version: 1\n"+strings.Replace(gpioSectionYAML, "BACKEND", "chip", 1))
	var stderr bytes.Buffer
	want, err := relayConfig(valid, &stderr)
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("valid file: %v %s", err, stderr.String())
	}
	if want.Relay.Line != "GPIO5" || !want.Relay.ActiveLow || want.Bell.Line != "GPIO6" || want.Backend != config.GPIOChip {
		t.Fatalf("valid file read as %+v", want)
	}
	for name, y := range brokenElsewhere {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, strings.Replace(y, "BACKEND", "chip", 1))
			if _, err := config.Load(path); err == nil {
				t.Fatal("the file loads: the case tests nothing")
			}
			var stderr bytes.Buffer
			g, err := relayConfig(path, &stderr)
			if err != nil {
				t.Fatalf("relay-off would drive nothing: %v", err)
			}
			if g.Relay.LineSpec != want.Relay.LineSpec || g.Bell.LineSpec != want.Bell.LineSpec || g.Backend != want.Backend {
				t.Errorf("lines %+v %+v %s, want %+v %+v %s", g.Relay.LineSpec, g.Bell.LineSpec, g.Backend, want.Relay.LineSpec, want.Bell.LineSpec, want.Backend)
			}
			if !strings.Contains(stderr.String(), "warning") || !strings.Contains(stderr.String(), path) {
				t.Errorf("no warning naming the file: %q", stderr.String())
			}
		})
	}
	// The relay's own line broken: nothing to release, and it says why.
	bad := writeConfig(t, "version: 1\ngpio:\n  relay: {line: GPIO5, chip: gpiochip0}\n")
	if _, err := relayConfig(bad, &stderr); err == nil || !strings.Contains(err.Error(), "gpio.relay") {
		t.Errorf("a relay naming both a line and a chip: %v", err)
	}
}

// The lines the section names are the ones driven inactive.
func TestReleaseOutputs(t *testing.T) {
	path := writeConfig(t, strings.Replace(brokenElsewhere["not YAML any more"], "BACKEND", "chip", 1))
	g, err := relayConfig(path, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	sim := gpio.NewSim()
	for _, name := range []string{gpio.RelayName, gpio.BellName} {
		l, err := sim.OpenOutput(gpio.OutputConfig{Name: name}, true) // left energised by a crash
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	if err := releaseOutputs(g, sim); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{gpio.RelayName, gpio.BellName} {
		if on, err := sim.Level(name); err != nil || on {
			t.Errorf("%s still energised (%v)", name, err)
		}
	}
}

// The command itself: exit 0 on a file broken elsewhere (here without a
// GPIO chip, so nothing to drive).
func TestRelayOffCommandBrokenElsewhere(t *testing.T) {
	path := writeConfig(t, strings.Replace(brokenElsewhere["wrong type"], "BACKEND", "sim", 1))
	var stdout, stderr bytes.Buffer
	env := &cmdEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if err := dispatch(context.Background(), []string{"relay-off", "--config", path}, env); err != nil {
		t.Fatalf("relay-off: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "nothing to do") || !strings.Contains(stderr.String(), "camera.bitrate") {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
