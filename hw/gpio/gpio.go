package gpio

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("gpio: closed")
	// ErrNotConfigured is returned when the panel has no such output (for
	// example no bell in the configuration).
	ErrNotConfigured = errors.New("gpio: not configured")
	// ErrUnknownName is returned for a button, LED or line name the panel
	// does not have.
	ErrUnknownName = errors.New("gpio: unknown name")
	// ErrInvalidConfig wraps every validation failure of a [Config].
	ErrInvalidConfig = errors.New("gpio: invalid config")
)

// Edge is one change of an input line's logical level.
type Edge struct {
	// Active is the level after the change: true when the button became
	// pressed.
	Active bool
	// Time is when the change happened, as close to the hardware as the
	// backend can tell (the kernel's event timestamp for [Chip]). It carries
	// a monotonic reading, so intervals between edges are exact.
	Time time.Time
}

// EdgeHandler receives the edges of one input line. Backends call it serially
// for a given line; it must return quickly and must not close the line.
type EdgeHandler func(Edge)

// InputLine is an input line with edge detection. Edges go to the handler
// given when the line was opened.
type InputLine interface {
	// Active reads the current logical level.
	Active() (bool, error)
	// Close stops edge delivery and releases the line. When it returns, the
	// handler is not running and will not be called again.
	Close() error
}

// OutputLine is an output line driven in logical terms.
type OutputLine interface {
	// Set drives the line to its active (true) or inactive level.
	Set(active bool) error
	// Close releases the line.
	Close() error
}

// Backend opens lines. Both methods must be safe for concurrent use.
type Backend interface {
	// OpenInput requests an input with both-edge detection, applying bias
	// and debounce. The handler receives debounced edges.
	OpenInput(cfg InputConfig, h EdgeHandler) (InputLine, error)
	// OpenOutput requests an output driven to initial before the call
	// returns.
	OpenOutput(cfg OutputConfig, initial bool) (OutputLine, error)
}

// LineRef names a line either by its name (such as "GPIO17", searched on
// every chip or only on Chip when set) or by Chip and Offset.
type LineRef struct {
	// Line is the line's name as the kernel reports it, such as "GPIO17".
	Line string
	// Chip is a chip name ("gpiochip0") or path ("/dev/gpiochip0").
	Chip string
	// Offset is the line's offset on Chip, used when Line is empty.
	Offset int
}

// IsZero reports whether the reference names no line at all.
func (r LineRef) IsZero() bool { return r.Line == "" && r.Chip == "" }

// String describes the line for logs and errors.
func (r LineRef) String() string {
	switch {
	case r.Line != "" && r.Chip != "":
		return fmt.Sprintf("line %s on %s", r.Line, r.Chip)
	case r.Line != "":
		return "line " + r.Line
	default:
		return fmt.Sprintf("line %d on %s", r.Offset, r.Chip)
	}
}

// InputConfig is what a [Backend] needs to open an input.
type InputConfig struct {
	// Name identifies the line in logs and in the [Sim].
	Name string
	LineRef
	ActiveLow bool
	Bias      Bias
	// Debounce is the time the level must be stable before an edge is
	// reported; zero disables debouncing.
	Debounce time.Duration
}

// OutputConfig is what a [Backend] needs to open an output.
type OutputConfig struct {
	// Name identifies the line in logs and in the [Sim].
	Name string
	LineRef
	ActiveLow bool
}

// Bias is the internal pull of an input line.
type Bias int

// Bias values. The zero value leaves the bias as the platform set it.
const (
	BiasAsIs Bias = iota
	BiasPullUp
	BiasPullDown
	BiasDisabled
)

// Biases lists every Bias value.
func Biases() []Bias { return []Bias{BiasAsIs, BiasPullUp, BiasPullDown, BiasDisabled} }

// String returns the configuration spelling of b, the same as the
// configuration file's gpio.buttons[].bias.
func (b Bias) String() string {
	switch b {
	case BiasAsIs:
		return "as-is"
	case BiasPullUp:
		return "pull-up"
	case BiasPullDown:
		return "pull-down"
	case BiasDisabled:
		return "disabled"
	}
	return fmt.Sprintf("Bias(%d)", int(b))
}

// ParseBias parses "pull-up", "pull-down", "disabled" or "as-is" (or "").
func ParseBias(s string) (Bias, error) {
	if s == "" {
		return BiasAsIs, nil
	}
	for _, b := range Biases() {
		if s == b.String() {
			return b, nil
		}
	}
	return BiasAsIs, fmt.Errorf("unknown bias %q (want pull-up, pull-down, disabled or as-is)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (b Bias) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Bias) UnmarshalText(text []byte) error {
	v, err := ParseBias(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
