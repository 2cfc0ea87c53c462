package gpio

import (
	"errors"
	"fmt"
	"time"
)

// Defaults and limits applied by [Config.WithDefaults] and checked by
// [Config.Validate].
const (
	DefaultLongPress  = 1500 * time.Millisecond
	DefaultRelayPulse = 3 * time.Second
	DefaultRelayMax   = 30 * time.Second
	DefaultBellPulse  = 1 * time.Second
	DefaultBellMax    = 5 * time.Second
	// MaxPulse is the longest any relay or bell may be energised in one
	// opening, whatever the configuration says.
	MaxPulse = 30 * time.Second
	// MaxDebounce bounds a button's debounce period.
	MaxDebounce = 500 * time.Millisecond
)

// Names the panel gives its relay and bell outputs (in logs and in [Sim]).
// Buttons and LEDs may not use them.
const (
	RelayName = "relay"
	BellName  = "bell"
)

// Config describes a panel. The zero value is a panel with nothing on it.
// Durations left at zero take the defaults of [Config.WithDefaults].
type Config struct {
	Buttons []ButtonConfig
	LEDs    []LEDConfig
	// Relay is the door relay; absent when it names no line.
	Relay RelayConfig
	// Bell is an optional bell or buzzer output, pulsed like the relay;
	// absent when it names no line.
	Bell RelayConfig
}

// ButtonConfig describes one push button.
type ButtonConfig struct {
	// Name is what events carry, such as "call" or "door".
	Name string
	// Line, Chip and Offset locate the line; see [LineRef].
	Line   string
	Chip   string
	Offset int
	// ActiveLow is set for a button that pulls the line low when pressed.
	ActiveLow bool
	Bias      Bias
	// Debounce is how long the level must be stable; zero disables it.
	Debounce time.Duration
	// LongPress is the hold time that makes a long press (default 1.5 s).
	LongPress time.Duration
}

// LEDConfig describes one indicator LED.
type LEDConfig struct {
	Name      string
	Line      string
	Chip      string
	Offset    int
	ActiveLow bool
}

// RelayConfig describes a pulsed output: the door relay or the bell.
type RelayConfig struct {
	Line      string
	Chip      string
	Offset    int
	ActiveLow bool
	// Pulse is the length of a Pulse(0) (relay 3 s, bell 1 s by default).
	Pulse time.Duration
	// Max bounds how long the output stays energised in one opening
	// (relay 30 s, bell 5 s by default; at most [MaxPulse]).
	Max time.Duration
}

// Ref returns the line reference of b.
func (b ButtonConfig) Ref() LineRef { return LineRef{Line: b.Line, Chip: b.Chip, Offset: b.Offset} }

// Ref returns the line reference of l.
func (l LEDConfig) Ref() LineRef { return LineRef{Line: l.Line, Chip: l.Chip, Offset: l.Offset} }

// Ref returns the line reference of r.
func (r RelayConfig) Ref() LineRef { return LineRef{Line: r.Line, Chip: r.Chip, Offset: r.Offset} }

// Configured reports whether r names a line.
func (r RelayConfig) Configured() bool { return !r.Ref().IsZero() }

// WithDefaults returns a copy of c with every zero duration replaced by its
// default. It is the only place defaults are applied.
func (c Config) WithDefaults() Config {
	out := c
	out.Buttons = append([]ButtonConfig(nil), c.Buttons...)
	for i := range out.Buttons {
		if out.Buttons[i].LongPress == 0 {
			out.Buttons[i].LongPress = DefaultLongPress
		}
	}
	out.LEDs = append([]LEDConfig(nil), c.LEDs...)
	if out.Relay.Configured() {
		out.Relay = out.Relay.withDefaults(DefaultRelayPulse, DefaultRelayMax)
	}
	if out.Bell.Configured() {
		out.Bell = out.Bell.withDefaults(DefaultBellPulse, DefaultBellMax)
	}
	return out
}

func (r RelayConfig) withDefaults(pulse, maxPulse time.Duration) RelayConfig {
	if r.Max == 0 {
		r.Max = max(maxPulse, r.Pulse)
	}
	if r.Pulse == 0 {
		r.Pulse = min(pulse, r.Max)
	}
	return r
}

// Validate checks c after defaults are applied and returns every problem
// found, each naming the field and the rule, joined and wrapping
// [ErrInvalidConfig].
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	names := map[string]string{RelayName: "relay", BellName: "bell"}
	lines := map[string]string{}
	checkName := func(field, name string) {
		if name == "" {
			bad(field, "must not be empty")
			return
		}
		if prev, ok := names[name]; ok {
			bad(field, "%q is already used by %s", name, prev)
			return
		}
		names[name] = field
	}
	checkLine := func(field string, r LineRef) {
		if r.IsZero() {
			bad(field, "needs line (a line name such as GPIO17) or chip and offset")
			return
		}
		if r.Offset < 0 {
			bad(field+".offset", "must not be negative, got %d", r.Offset)
		}
		key := r.Chip + "\x00" + r.Line
		if r.Line == "" {
			key = fmt.Sprintf("%s\x00#%d", r.Chip, r.Offset)
		}
		if prev, ok := lines[key]; ok {
			bad(field, "%s is already used by %s", r, prev)
			return
		}
		lines[key] = field
	}
	checkPulsed := func(field string, r RelayConfig) {
		if !r.Configured() {
			return
		}
		checkLine(field, r.Ref())
		if r.Max <= 0 || r.Max > MaxPulse {
			bad(field+".max", "must be in (0, %v], got %v", MaxPulse, r.Max)
		}
		if r.Pulse <= 0 || r.Pulse > r.Max {
			bad(field+".pulse", "must be in (0, max=%v], got %v", r.Max, r.Pulse)
		}
	}

	// Relay and bell first: their lines are the ones that matter most.
	checkPulsed("relay", c.Relay)
	checkPulsed("bell", c.Bell)
	for i, b := range c.Buttons {
		f := fmt.Sprintf("buttons[%d]", i)
		checkName(f+".name", b.Name)
		checkLine(f, b.Ref())
		if b.Bias < BiasAsIs || b.Bias > BiasDisabled {
			bad(f+".bias", "unknown bias %d", int(b.Bias))
		}
		if b.Debounce < 0 || b.Debounce > MaxDebounce {
			bad(f+".debounce", "must be in [0, %v], got %v", MaxDebounce, b.Debounce)
		}
		if b.LongPress <= b.Debounce {
			bad(f+".long_press", "must be longer than debounce (%v), got %v", b.Debounce, b.LongPress)
		}
	}
	for i, l := range c.LEDs {
		f := fmt.Sprintf("leds[%d]", i)
		checkName(f+".name", l.Name)
		checkLine(f, l.Ref())
	}
	return errors.Join(errs...)
}
