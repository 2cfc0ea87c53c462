package gpio

import (
	"fmt"
	"time"
)

// Pattern is what an LED shows.
type Pattern int

// Patterns. The zero value is not a pattern; [PatternOff] is the LED's state
// after Open and Halt.
const (
	PatternUnknown   Pattern = iota
	PatternOff               // steadily off
	PatternOn                // steadily on
	PatternSlowBlink         // 1 Hz: 500 ms on, 500 ms off
	PatternFastBlink         // 4 Hz: 125 ms on, 125 ms off
	PatternHeartbeat         // 125 ms on, 125 off, 125 on, 625 off
)

// Tick is the resolution of LED patterns: every step lasts a whole number of
// ticks.
const Tick = 125 * time.Millisecond

// String returns the configuration spelling of p.
func (p Pattern) String() string {
	switch p {
	case PatternUnknown:
		return "unknown"
	case PatternOff:
		return "off"
	case PatternOn:
		return "on"
	case PatternSlowBlink:
		return "slow-blink"
	case PatternFastBlink:
		return "fast-blink"
	case PatternHeartbeat:
		return "heartbeat"
	}
	return fmt.Sprintf("Pattern(%d)", int(p))
}

// Valid reports whether p is a known pattern other than PatternUnknown.
func (p Pattern) Valid() bool { return p > PatternUnknown && p <= PatternHeartbeat }

// ParsePattern parses "off", "on", "slow-blink", "fast-blink" or "heartbeat".
func ParsePattern(s string) (Pattern, error) {
	for p := PatternOff; p <= PatternHeartbeat; p++ {
		if s == p.String() {
			return p, nil
		}
	}
	return PatternUnknown, fmt.Errorf("unknown LED pattern %q (want off, on, slow-blink, fast-blink or heartbeat)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Pattern) UnmarshalText(text []byte) error {
	v, err := ParsePattern(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// blinks reports whether p needs the ticker.
func (p Pattern) blinks() bool {
	return p == PatternSlowBlink || p == PatternFastBlink || p == PatternHeartbeat
}

// level returns p's level at step n, counted in ticks since the pattern was
// (re)started; step 0 is shown at once.
func (p Pattern) level(n int) bool {
	switch p {
	case PatternOn:
		return true
	case PatternSlowBlink: // 4 ticks on, 4 off
		return n%8 < 4
	case PatternFastBlink: // 1 tick on, 1 off
		return n%2 == 0
	case PatternHeartbeat: // on, off, on, then 5 ticks off
		return n%8 == 0 || n%8 == 2
	default:
		return false
	}
}
