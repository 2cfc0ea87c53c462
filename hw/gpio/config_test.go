package gpio_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/gpio"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *gpio.Config)
		want   string // substring naming field and rule; "" for valid
	}{
		{"valid", func(c *gpio.Config) {}, ""},
		{"empty panel", func(c *gpio.Config) { *c = gpio.Config{} }, ""},
		{"button without name", func(c *gpio.Config) { c.Buttons[1].Name = "" }, "buttons[1].name: must not be empty"},
		{"button without line", func(c *gpio.Config) { c.Buttons[0].Line = "" }, "buttons[0]: needs line"},
		{"duplicate name", func(c *gpio.Config) { c.LEDs[0].Name = "door" }, `leds[0].name: "door" is already used by buttons[1].name`},
		{"reserved name", func(c *gpio.Config) { c.LEDs[0].Name = gpio.RelayName }, `leds[0].name: "relay" is already used by relay`},
		{"shared line", func(c *gpio.Config) { c.LEDs[0].Line = "GPIO5" }, "leds[0]: line GPIO5 is already used by relay"},
		{"shared offset", func(c *gpio.Config) { c.LEDs[0] = gpio.LEDConfig{Name: "x", Chip: "gpiochip0", Offset: 23} }, "leds[1]: line 23 on gpiochip0 is already used by leds[0]"},
		{"negative offset", func(c *gpio.Config) { c.LEDs[1].Offset = -1 }, "leds[1].offset: must not be negative"},
		{"debounce too long", func(c *gpio.Config) { c.Buttons[0].Debounce = time.Second }, "buttons[0].debounce: must be in [0, 500ms]"},
		{"long press under debounce", func(c *gpio.Config) { c.Buttons[1].LongPress = 10 * time.Millisecond }, "buttons[1].long_press: must be longer than debounce"},
		{"bad bias", func(c *gpio.Config) { c.Buttons[0].Bias = 9 }, "buttons[0].bias: unknown bias 9"},
		{"relay max too long", func(c *gpio.Config) { c.Relay.Max = time.Minute }, "relay.max: must be in (0, 30s]"},
		{"relay pulse over max", func(c *gpio.Config) { c.Relay.Pulse = 20 * time.Second }, "relay.pulse: must be in (0, max=10s]"},
		{"negative bell pulse", func(c *gpio.Config) { c.Bell.Pulse = -time.Second }, "bell.pulse: must be in (0, max=5s]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := panelConfig()
			c.change(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, gpio.ErrInvalidConfig) {
				t.Fatalf("got %v, want an ErrInvalidConfig containing %q", err, c.want)
			}
		})
	}
}

func TestValidateBeforeOpeningAnything(t *testing.T) {
	cfg := panelConfig()
	cfg.Relay.Max = time.Hour
	b := &orderBackend{Backend: gpio.NewSim()}
	if _, err := gpio.Open(cfg, b, testLogger(t)); !errors.Is(err, gpio.ErrInvalidConfig) {
		t.Fatalf("Open: %v", err)
	}
	if len(b.opened) != 0 {
		t.Fatalf("opened %v before validating", b.opened)
	}
}

func TestDefaults(t *testing.T) {
	c := gpio.Config{
		Buttons: []gpio.ButtonConfig{{Name: "call", Line: "GPIO17"}},
		Relay:   gpio.RelayConfig{Line: "GPIO5"},
		Bell:    gpio.RelayConfig{Line: "GPIO6", Pulse: 8 * time.Second},
	}.WithDefaults()
	if c.Buttons[0].LongPress != gpio.DefaultLongPress {
		t.Errorf("long press %v", c.Buttons[0].LongPress)
	}
	if c.Relay.Pulse != 3*time.Second || c.Relay.Max != 30*time.Second {
		t.Errorf("relay %+v", c.Relay)
	}
	// A configured pulse longer than the default max raises max with it.
	if c.Bell.Pulse != 8*time.Second || c.Bell.Max != 8*time.Second {
		t.Errorf("bell %+v", c.Bell)
	}
}

func TestParse(t *testing.T) {
	for p := gpio.PatternOff; p <= gpio.PatternHeartbeat; p++ {
		var q gpio.Pattern
		text, _ := p.MarshalText()
		if err := q.UnmarshalText(text); err != nil || q != p {
			t.Errorf("%v round-trips to %v, %v", p, q, err)
		}
	}
	if _, err := gpio.ParsePattern("unknown"); err == nil {
		t.Error("pattern unknown parsed")
	}
	for b := gpio.BiasAsIs; b <= gpio.BiasDisabled; b++ {
		if got, err := gpio.ParseBias(b.String()); err != nil || got != b {
			t.Errorf("%v parses to %v, %v", b, got, err)
		}
	}
	if _, err := gpio.ParseBias("pullup"); err == nil {
		t.Error("bias pullup parsed")
	}
}
