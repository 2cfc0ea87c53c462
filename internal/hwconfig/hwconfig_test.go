package hwconfig_test

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/internal/hwconfig"
)

// recorder is a gpio.Backend that records what the panel asks for.
type recorder struct {
	mu      sync.Mutex
	inputs  map[string]gpio.InputConfig
	outputs map[string]gpio.OutputConfig
}

type line struct{}

func (line) Active() (bool, error) { return false, nil }
func (line) Set(bool) error        { return nil }
func (line) Close() error          { return nil }

func (r *recorder) OpenInput(cfg gpio.InputConfig, _ gpio.EdgeHandler) (gpio.InputLine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs[cfg.Name] = cfg
	return line{}, nil
}

func (r *recorder) OpenOutput(cfg gpio.OutputConfig, _ bool) (gpio.OutputLine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs[cfg.Name] = cfg
	return line{}, nil
}

// parse loads a configuration whose gpio section is yaml, as the daemon
// does, so that only values the configuration accepts are tried.
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte("version: 1\n"+yaml))
	if err != nil {
		t.Fatalf("config refused:\n%s\n%v", yaml, err)
	}
	return c
}

// TestGPIOValuesReachTheBackend runs every accepted bias and active_low of
// every line through the configuration, this package and the panel to the
// backend's open calls. hw/gpio's TestInputOptions carries each on to the
// gpiocdev line request.
func TestGPIOValuesReachTheBackend(t *testing.T) {
	want := map[config.Bias]gpio.Bias{
		config.BiasAsIs: gpio.BiasAsIs, config.BiasDisabled: gpio.BiasDisabled,
		config.BiasPullUp: gpio.BiasPullUp, config.BiasPullDown: gpio.BiasPullDown,
	}
	for _, bias := range config.Biases() {
		wb, ok := want[bias]
		if !ok {
			t.Fatalf("bias %q: no expected gpio bias in this test", bias)
		}
		for _, low := range []bool{false, true} {
			c := parse(t, fmt.Sprintf(`gpio:
  backend: sim
  buttons:
    - {name: call, line: GPIO17, active_low: %[1]v, bias: %[2]s}
  leds:
    - {name: status, line: GPIO27, active_low: %[1]v}
  relay: {line: GPIO22, active_low: %[1]v}
  bell: {line: GPIO23, active_low: %[1]v}
`, low, bias))
			g, err := hwconfig.GPIO(c.GPIO)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{inputs: map[string]gpio.InputConfig{}, outputs: map[string]gpio.OutputConfig{}}
			p, err := gpio.Open(g, rec, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			in := rec.inputs["call"]
			if in.Bias != wb || in.ActiveLow != low || in.Line != "GPIO17" {
				t.Errorf("bias %s active_low %v: button opened as %+v", bias, low, in)
			}
			for _, name := range []string{"status", gpio.RelayName, gpio.BellName} {
				out, ok := rec.outputs[name]
				if !ok || out.ActiveLow != low {
					t.Errorf("active_low %v: %s opened as %+v (opened: %v)", low, name, out, ok)
				}
			}
		}
	}
}

func TestGPIOBackends(t *testing.T) {
	want := map[config.GPIOBackend][2]bool{ // chip used without, with a chip present
		config.GPIOAuto: {false, true}, config.GPIOChip: {true, true}, config.GPIOSim: {false, false},
	}
	for _, b := range config.GPIOBackends() {
		parse(t, "gpio:\n  backend: "+string(b)+"\n")
		w, ok := want[b]
		if !ok {
			t.Fatalf("backend %q: no expectation in this test", b)
		}
		for i, present := range []bool{false, true} {
			got, err := hwconfig.UseChip(b, present)
			if err != nil || got != w[i] {
				t.Errorf("UseChip(%q, chip present %v) = %v, %v; want %v", b, present, got, err, w[i])
			}
		}
	}
	if _, err := hwconfig.UseChip("gpiod", true); err == nil {
		t.Error("an unknown backend was accepted")
	}
}

// TestCameraFormats runs every accepted camera format through to a source
// the camera pipeline accepts with that pixel format.
func TestCameraFormats(t *testing.T) {
	for _, f := range config.CameraFormats() {
		c := parse(t, fmt.Sprintf("camera:\n  devices:\n    - {name: front, device: /dev/video0, width: 640, height: 480, fps: 30, format: %q}\n", f))
		src, err := hwconfig.CameraSource(c.Camera.Devices[0])
		if err != nil {
			t.Fatalf("format %q: %v", f, err)
		}
		if string(src.PixelFormat) != f || src.Device != "/dev/video0" {
			t.Errorf("format %q: source %+v", f, src)
		}
		cc := camera.Config{Sources: []camera.Source{src}}
		cc.Encoder.BitRate = c.Camera.Bitrate
		if err := cc.Validate(); err != nil {
			t.Errorf("format %q: the camera refuses the source: %v", f, err)
		}
	}
	src, err := hwconfig.CameraSource(config.CameraDevice{Device: config.TestPatternDevice})
	if err != nil || !src.IsTestPattern() {
		t.Errorf("test pattern device: %+v, %v", src, err)
	}
	if _, err := hwconfig.CameraSource(config.CameraDevice{Device: "/dev/video0", Format: "H265"}); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// TestAudioBackends runs every accepted audio backend through to an audio
// configuration the engine accepts.
func TestAudioBackends(t *testing.T) {
	type res struct {
		b        audio.Backend
		fallback bool
	}
	want := map[config.AudioBackend][2]res{ // without, with a sound card
		config.AudioAuto: {{audio.BackendNull, true}, {audio.BackendALSA, true}},
		config.AudioALSA: {{audio.BackendALSA, false}, {audio.BackendALSA, false}},
		config.AudioNull: {{audio.BackendNull, false}, {audio.BackendNull, false}},
	}
	for _, b := range config.AudioBackends() {
		parse(t, "audio:\n  backend: "+string(b)+"\n")
		w, ok := want[b]
		if !ok {
			t.Fatalf("backend %q: no expectation in this test", b)
		}
		for i, card := range []bool{false, true} {
			got, fallback, err := hwconfig.AudioBackend(b, card)
			if err != nil || got != w[i].b || fallback != w[i].fallback {
				t.Errorf("AudioBackend(%q, card %v) = %v, %v, %v; want %v", b, card, got, fallback, err, w[i])
			}
			ac := audio.Config{Backend: got, NullFallback: fallback, Playback: "default", Capture: "default"}
			if err := ac.Validate(); err != nil {
				t.Errorf("backend %q: the engine refuses %+v: %v", b, ac, err)
			}
		}
	}
	if _, _, err := hwconfig.AudioBackend("pulse", true); err == nil {
		t.Error("a backend the configuration does not accept was mapped")
	}
}
