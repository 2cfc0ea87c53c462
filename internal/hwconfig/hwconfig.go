// Package hwconfig maps the hardware sections of the configuration file
// (package config) onto the configurations of hw/gpio, hw/camera and
// hw/audio. It is the one place where a configuration value becomes a
// hardware setting: every value config accepts maps to one the hardware
// package applies, and a value it cannot map is an error, never a silent
// default. The daemon's composition root calls it; it opens nothing.
package hwconfig

import (
	"fmt"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/hw/gpio"
)

// GPIO returns the panel configuration of c: buttons, LEDs, the door relay
// and the bell.
func GPIO(c config.GPIO) (gpio.Config, error) {
	var g gpio.Config
	off := func(o int) int { return max(o, 0) } // -1: located by name
	for i, b := range c.Buttons {
		bias, err := gpio.ParseBias(string(b.Bias))
		if err != nil {
			return gpio.Config{}, fmt.Errorf("gpio.buttons[%d].bias: %w", i, err)
		}
		g.Buttons = append(g.Buttons, gpio.ButtonConfig{
			Name: b.Name, Line: b.Line, Chip: b.Chip, Offset: off(b.Offset), ActiveLow: b.ActiveLow,
			Bias: bias, Debounce: b.Debounce, LongPress: b.LongPress,
		})
	}
	for _, l := range c.LEDs {
		g.LEDs = append(g.LEDs, gpio.LEDConfig{Name: l.Name, Line: l.Line, Chip: l.Chip, Offset: off(l.Offset), ActiveLow: l.ActiveLow})
	}
	pulsed := func(l config.LineSpec) gpio.RelayConfig {
		return gpio.RelayConfig{Line: l.Line, Chip: l.Chip, Offset: off(l.Offset), ActiveLow: l.ActiveLow}
	}
	if c.Relay.Configured() {
		g.Relay = pulsed(c.Relay.LineSpec)
		g.Relay.Pulse, g.Relay.Max = c.Relay.Pulse, c.Relay.Max
	}
	if c.Bell.Configured() {
		g.Bell = pulsed(c.Bell.LineSpec)
		g.Bell.Pulse = c.Bell.Pulse
	}
	return g, nil
}

// UseChip tells whether gpio.backend b selects the GPIO character device
// (gpio.Chip) rather than the simulator; chipPresent says whether the
// machine has one (/dev/gpiochip*), which decides for "auto".
func UseChip(b config.GPIOBackend, chipPresent bool) (bool, error) {
	switch b {
	case config.GPIOChip:
		return true, nil
	case config.GPIOAuto, "":
		return chipPresent, nil
	case config.GPIOSim:
		return false, nil
	}
	return false, fmt.Errorf("gpio.backend: unknown backend %q", b)
}

// CameraSource returns the camera source of one configured device.
func CameraSource(d config.CameraDevice) (camera.Source, error) {
	src := camera.Source{
		Name: d.Name, Device: d.Device, Width: d.Width, Height: d.Height,
		FrameRate: float64(d.FPS), PatternNoise: d.PatternNoise,
	}
	switch {
	case len(d.Command) > 0:
		src.Command = append([]string(nil), d.Command...)
	case d.Device == config.TestPatternDevice:
		src.Device = camera.TestPatternDevice
	case d.Device == config.RpicamDevice:
		src.Command = camera.RpicamCommand(d.Width, d.Height, float64(d.FPS), camera.DefaultBitRate, 2*d.FPS)
	}
	switch f := camera.PixelFormat(d.Format); f {
	case camera.PixelFormatAuto, camera.PixelFormatI420, camera.PixelFormatNV12, camera.PixelFormatNV21,
		camera.PixelFormatYUYV, camera.PixelFormatUYVY, camera.PixelFormatMJPEG, camera.PixelFormatH264:
		src.PixelFormat = f
	default:
		return camera.Source{}, fmt.Errorf("camera device %s: unknown format %q", d.Device, d.Format)
	}
	return src, nil
}

// AudioBackend returns the audio backend audio.backend b selects, and
// whether the engine falls back to the null device when the sound card does
// not open; soundCard says whether ALSA lists a card, which decides for
// "auto".
func AudioBackend(b config.AudioBackend, soundCard bool) (backend audio.Backend, nullFallback bool, err error) {
	switch b {
	case config.AudioNull:
		return audio.BackendNull, false, nil
	case config.AudioALSA:
		return audio.BackendALSA, false, nil
	case config.AudioAuto, "":
		if !soundCard {
			return audio.BackendNull, true, nil
		}
		return audio.BackendALSA, true, nil
	}
	return 0, false, fmt.Errorf("audio.backend: unknown backend %q", b)
}
