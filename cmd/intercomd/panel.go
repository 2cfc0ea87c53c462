package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/internal/hwconfig"
)

// gpioBackend picks the backend: the GPIO character device when the config
// says chip, or says auto and the machine has one; the simulator otherwise.
func gpioBackend(c config.GPIO) (gpio.Backend, *gpio.Sim, error) {
	chips, _ := filepath.Glob("/dev/gpiochip*")
	chip, err := hwconfig.UseChip(c.Backend, len(chips) > 0)
	if err != nil {
		return nil, nil, err
	}
	if chip {
		return gpio.Chip{}, nil, nil
	}
	sim := gpio.NewSim()
	return sim, sim, nil
}

func (d *daemon) openPanel() error {
	backend, sim, err := gpioBackend(d.cfg.GPIO)
	if err != nil {
		return fmt.Errorf("gpio: %w", err)
	}
	gc, err := hwconfig.GPIO(d.cfg.GPIO)
	if err != nil {
		return fmt.Errorf("gpio: %w", err)
	}
	panel, err := gpio.Open(gc, backend, d.log.With("component", "gpio"))
	if err != nil {
		return fmt.Errorf("gpio: %w", err)
	}
	d.panel, d.sim = panel, sim
	if sim != nil {
		_, how := stdinButton(d.env.stdin)
		d.log.Info("no GPIO chip: simulated buttons, LEDs and relay (" + how + ")")
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
				// LEDs are shown by pattern (the station), not every blink.
				if c.Name == gpio.RelayName || c.Name == gpio.BellName {
					fmt.Fprintf(d.env.stdout, "[%s: %s]\n", c.Name, map[bool]string{true: "ON", false: "off"}[c.Active])
				}
			}
		}
	}()
	if ok, _ := stdinButton(d.env.stdin); !ok {
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
	if ctx.Err() == nil {
		d.log.Info("stdin closed: the simulated button cannot be pressed any more")
	}
}

// stdinButton says whether lines read from stdin can press the simulated
// button, and how to press it (or why not): any stdin that is not
// /dev/null can, a pipe, a fifo or a terminal alike.
func stdinButton(stdin io.Reader) (bool, string) {
	const line = "write a line to stdin to press the button, 'l' for a long press"
	f, ok := stdin.(*os.File)
	switch {
	case stdin == nil:
		return false, "no stdin: the simulated button cannot be pressed"
	case !ok:
		return true, line
	}
	st, err := f.Stat()
	if err != nil {
		return false, "stdin unreadable: the simulated button cannot be pressed"
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false, "stdin is " + os.DevNull + ": the simulated button cannot be pressed"
	}
	if st.Mode()&os.ModeCharDevice != 0 {
		return true, "press Enter to press the button, 'l' Enter for a long press"
	}
	return true, line
}
