package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/gpio"
)

// gpioConfig maps the YAML GPIO section onto the panel's configuration.
func gpioConfig(c config.GPIO) gpio.Config {
	var g gpio.Config
	off := func(o int) int { return max(o, 0) } // -1: located by name
	for _, b := range c.Buttons {
		bias, _ := gpio.ParseBias(string(b.Bias))
		g.Buttons = append(g.Buttons, gpio.ButtonConfig{
			Name: b.Name, Line: b.Line, Chip: b.Chip, Offset: off(b.Offset), ActiveLow: b.ActiveLow,
			Bias: bias, Debounce: b.Debounce, LongPress: b.LongPress,
		})
	}
	for _, l := range c.LEDs {
		g.LEDs = append(g.LEDs, gpio.LEDConfig{Name: l.Name, Line: l.Line, Chip: l.Chip, Offset: off(l.Offset), ActiveLow: l.ActiveLow})
	}
	if c.Relay.Configured() {
		g.Relay = gpio.RelayConfig{Line: c.Relay.Line, Chip: c.Relay.Chip, Offset: off(c.Relay.Offset), ActiveLow: c.Relay.ActiveLow, Pulse: c.Relay.Pulse, Max: c.Relay.Max}
	}
	if c.Bell.Configured() {
		g.Bell = gpio.RelayConfig{Line: c.Bell.Line, Chip: c.Bell.Chip, Offset: off(c.Bell.Offset), ActiveLow: c.Bell.ActiveLow, Pulse: c.Bell.Pulse}
	}
	return g
}

// gpioBackend picks the backend: the GPIO character device when the config
// says chip, or says auto and the machine has one; the simulator otherwise.
func gpioBackend(c config.GPIO) (gpio.Backend, *gpio.Sim) {
	switch c.Backend {
	case config.GPIOChip:
		return gpio.Chip{}, nil
	case config.GPIOAuto, "":
		if chips, _ := filepath.Glob("/dev/gpiochip*"); len(chips) > 0 {
			return gpio.Chip{}, nil
		}
	}
	sim := gpio.NewSim()
	return sim, sim
}

func (d *daemon) openPanel() error {
	backend, sim := gpioBackend(d.cfg.GPIO)
	panel, err := gpio.Open(gpioConfig(d.cfg.GPIO), backend, d.log.With("component", "gpio"))
	if err != nil {
		return fmt.Errorf("gpio: %w", err)
	}
	d.panel, d.sim = panel, sim
	if sim != nil {
		d.log.Info("no GPIO chip: simulated buttons, LEDs and relay (press Enter to press the button, 'l' Enter for a long press)")
	}
	return nil
}

// simTerminal lets a person drive the simulated panel from the terminal and
// prints every change of the simulated outputs.
func (d *daemon) simTerminal(ctx context.Context) {
	changes := d.sim.Watch(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case c, ok := <-changes:
				if !ok {
					return
				}
				// LEDs are shown by pattern (showState), not every blink.
				if c.Name == gpio.RelayName || c.Name == gpio.BellName {
					fmt.Fprintf(d.env.stdout, "[%s: %s]\n", c.Name, map[bool]string{true: "ON", false: "off"}[c.Active])
				}
			}
		}
	}()
	if d.env.stdin == nil || d.env.stdin == os.Stdin && !isTerminal(os.Stdin) && d.env.getenv("INTERCOMD_SIM_STDIN") == "" {
		return
	}
	button := "call"
	if len(d.cfg.GPIO.Buttons) > 0 {
		button = d.cfg.GPIO.Buttons[0].Name
	}
	long := 1500 * time.Millisecond
	if len(d.cfg.GPIO.Buttons) > 0 && d.cfg.GPIO.Buttons[0].LongPress > 0 {
		long = d.cfg.GPIO.Buttons[0].LongPress
	}
	sc := bufio.NewScanner(d.env.stdin)
	for sc.Scan() {
		hold := 100 * time.Millisecond
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), "l") {
			hold = long + 100*time.Millisecond
		}
		if err := d.sim.Click(ctx, button, hold); err != nil {
			return
		}
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
