package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/internal/hwconfig"
)

// runRelayOff drives the door relay and the bell inactive. It runs after
// every stop of the service (ExecStopPost), a crash included, and so must
// work whatever else is wrong with the configuration: when the file does
// not load it reads the lines from its gpio section alone.
func runRelayOff(_ context.Context, args []string, env *cmdEnv) error {
	fs := newFlags("relay-off", "Drive the door relay (and the bell) to their inactive level and exit. Safe to run at any time; the unit runs it after every stop. A configuration broken outside its gpio section still releases them.", env)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	g, err := relayConfig(*path, env.stderr)
	if err != nil {
		return fmt.Errorf("relay-off: %w", err)
	}
	backend, sim, err := gpioBackend(g)
	if err != nil {
		return fmt.Errorf("relay-off: %w", err)
	}
	if sim != nil {
		fmt.Fprintln(env.stdout, "relay-off: no GPIO chip; nothing to do")
		return nil
	}
	return releaseOutputs(g, backend)
}

// releaseOutputs drives the relay and the bell of g inactive; an output
// that fails does not keep the other from being released.
func releaseOutputs(g config.GPIO, backend gpio.Backend) error {
	gc, err := hwconfig.GPIO(g)
	if err != nil {
		return fmt.Errorf("relay-off: %w", err)
	}
	var errs []error
	for _, out := range []struct {
		name string
		rc   gpio.RelayConfig
	}{{gpio.RelayName, gc.Relay}, {gpio.BellName, gc.Bell}} {
		if err := gpio.OutputOff(out.name, out.rc, backend); err != nil {
			errs = append(errs, fmt.Errorf("relay-off: %w", err))
		}
	}
	return errors.Join(errs...)
}

// relayConfig is the GPIO configuration of the file at path (DefaultPath
// when ""): all of it when the file loads, else what its gpio section says
// of the backend, the relay and the bell (lines only: the pulse times do
// not matter to releasing them). A file broken elsewhere, even one that is
// not YAML any more outside its gpio section, still names the lines; the
// error is then only a warning on stderr.
func relayConfig(path string, stderr io.Writer) (config.GPIO, error) {
	cfg, err := config.Load(path)
	if err == nil {
		return cfg.GPIO, nil
	}
	if path == "" {
		path = config.DefaultPath
	}
	g, gerr := gpioSection(path)
	if gerr != nil {
		return config.GPIO{}, fmt.Errorf("%w; and its gpio section alone: %w", err, gerr)
	}
	fmt.Fprintf(stderr, "relay-off: warning: %v\nrelay-off: the configuration does not load; releasing the lines its gpio section names\n", err)
	return g, nil
}

// topLevelKey starts a top-level key of a YAML mapping.
var topLevelKey = regexp.MustCompile(`^[^\s#-]`)

// gpioSection reads the gpio section of the file at path on its own: the
// lines from "gpio:" to the next top-level key, decoded and checked alone.
func gpioSection(path string) (config.GPIO, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.GPIO{}, err
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "gpio:"):
			in = true
		case in && topLevelKey.MatchString(line):
			in = false
		}
		if in {
			block = append(block, line)
		}
	}
	var doc struct {
		GPIO struct {
			Backend yaml.Node `yaml:"backend"`
			Relay   yaml.Node `yaml:"relay"`
			Bell    yaml.Node `yaml:"bell"`
		} `yaml:"gpio"`
	}
	if err := yaml.Unmarshal([]byte(strings.Join(block, "\n")), &doc); err != nil {
		return config.GPIO{}, fmt.Errorf("gpio section: %w", err)
	}
	// A document of that alone, with no buttons or LEDs (whose default
	// lines could clash with the relay's), through the configuration's
	// own defaults and checks.
	gpioDoc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
	}
	if doc.GPIO.Backend.Kind != 0 {
		add(gpioDoc, "backend", &doc.GPIO.Backend)
	}
	add(gpioDoc, "buttons", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
	add(gpioDoc, "leds", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
	for _, out := range []struct {
		name string
		node *yaml.Node
	}{{"relay", &doc.GPIO.Relay}, {"bell", &doc.GPIO.Bell}} {
		if out.node.Kind != yaml.MappingNode {
			continue // absent: its default; anything else is no line to release
		}
		lines := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i+1 < len(out.node.Content); i += 2 {
			switch k := out.node.Content[i].Value; k {
			case "line", "chip", "offset", "active_low":
				add(lines, k, out.node.Content[i+1])
			}
		}
		add(gpioDoc, out.name, lines)
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add(root, "version", &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(config.Version), Tag: "!!int"})
	add(root, "gpio", gpioDoc)
	b, err := yaml.Marshal(root)
	if err != nil {
		return config.GPIO{}, fmt.Errorf("gpio section: %w", err)
	}
	cfg, err := config.Parse(path+" (gpio section)", b)
	if err != nil {
		return config.GPIO{}, err
	}
	return cfg.GPIO, nil
}
