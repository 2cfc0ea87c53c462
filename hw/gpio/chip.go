//go:build linux

package gpio

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"
)

// DefaultConsumer is the consumer label [Chip] gives its line requests.
const DefaultConsumer = "intercomd"

// Chip is the [Backend] for the Linux GPIO character device (/dev/gpiochipN)
// through go-gpiocdev, uAPI v2 where the kernel has it.
//
// Lines are found by name on every chip (gpiocdev.FindLine, so "GPIO17"
// works on any Raspberry Pi whichever chip carries the header), by name on
// one chip, or by chip and offset. Bias needs Linux 5.5. Kernel debounce
// needs uAPI v2 (Linux 5.10); when the kernel refuses it the line is opened
// without and debounced in software by a [Debouncer], and a log line says
// so. Edge timestamps are the kernel's (CLOCK_MONOTONIC since Linux 5.7),
// converted to time.Time.
//
// The zero value is usable.
type Chip struct {
	// Consumer labels the requests; DefaultConsumer when empty.
	Consumer string
	// Log receives notices such as the software debounce fallback; nil
	// discards them.
	Log *slog.Logger
}

func (c Chip) consumer() string {
	if c.Consumer == "" {
		return DefaultConsumer
	}
	return c.Consumer
}

func (c Chip) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// resolve finds the chip and offset of r.
func resolve(r LineRef) (string, int, error) {
	switch {
	case r.Line != "" && r.Chip != "":
		ch, err := gpiocdev.NewChip(r.Chip)
		if err != nil {
			return "", 0, fmt.Errorf("open %s: %w", r.Chip, err)
		}
		defer ch.Close()
		off, err := ch.FindLine(r.Line)
		if err != nil {
			return "", 0, fmt.Errorf("find %s: %w", r, err)
		}
		return r.Chip, off, nil
	case r.Line != "":
		chip, off, err := gpiocdev.FindLine(r.Line)
		if err != nil {
			return "", 0, fmt.Errorf("find %s on any chip: %w", r, err)
		}
		return chip, off, nil
	case r.Chip != "":
		return r.Chip, r.Offset, nil
	}
	return "", 0, fmt.Errorf("no line named")
}

// OpenInput implements [Backend].
func (c Chip) OpenInput(cfg InputConfig, h EdgeHandler) (InputLine, error) {
	chip, off, err := resolve(cfg.LineRef)
	if err != nil {
		return nil, err
	}
	opts, err := inputOptions(c.consumer(), cfg)
	if err != nil {
		return nil, err
	}

	handler := func(le gpiocdev.LineEvent) { h(edgeFromEvent(le)) }
	if cfg.Debounce > 0 {
		kopts := append(slices.Clone(opts), gpiocdev.WithDebounce(cfg.Debounce), gpiocdev.WithEventHandler(handler))
		line, kerr := gpiocdev.RequestLine(chip, off, kopts...)
		if kerr == nil {
			return &chipInput{line: line}, nil
		}
		deb := NewDebouncer(cfg.Debounce, h)
		sopts := append(opts, gpiocdev.WithEventHandler(func(le gpiocdev.LineEvent) { deb.Edge(edgeFromEvent(le)) }))
		line, err := gpiocdev.RequestLine(chip, off, sopts...)
		if err != nil {
			return nil, fmt.Errorf("request line %d on %s: %w", off, chip, err)
		}
		c.logger().Info("kernel refused debounce; debouncing in software",
			"line", cfg.Name, "chip", chip, "offset", off, "err", kerr)
		return &chipInput{line: line, deb: deb}, nil
	}
	line, err := gpiocdev.RequestLine(chip, off, append(opts, gpiocdev.WithEventHandler(handler))...)
	if err != nil {
		return nil, fmt.Errorf("request line %d on %s: %w", off, chip, err)
	}
	return &chipInput{line: line}, nil
}

// inputOptions are the line request options of an input: both edges, and
// the inversion and bias cfg asks for.
func inputOptions(consumer string, cfg InputConfig) ([]gpiocdev.LineReqOption, error) {
	opts := []gpiocdev.LineReqOption{gpiocdev.WithConsumer(consumer), gpiocdev.WithBothEdges}
	if cfg.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	switch cfg.Bias {
	case BiasAsIs:
	case BiasPullUp:
		opts = append(opts, gpiocdev.WithPullUp)
	case BiasPullDown:
		opts = append(opts, gpiocdev.WithPullDown)
	case BiasDisabled:
		opts = append(opts, gpiocdev.WithBiasDisabled)
	default:
		return nil, fmt.Errorf("%s: unknown bias %d", cfg.Name, int(cfg.Bias))
	}
	return opts, nil
}

// outputOptions are the line request options of an output driven to
// initial (a logical level: inverted when cfg is active low).
func outputOptions(consumer string, cfg OutputConfig, initial bool) []gpiocdev.LineReqOption {
	v := 0
	if initial {
		v = 1
	}
	opts := []gpiocdev.LineReqOption{gpiocdev.WithConsumer(consumer)}
	if cfg.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	return append(opts, gpiocdev.AsOutput(v))
}

// edgeFromEvent converts a kernel event. The kernel stamps events with
// CLOCK_MONOTONIC, which Go does not expose as a time.Time: the event's age
// is measured on that clock and subtracted from time.Now, which keeps Go's
// monotonic reading. Kernels before 5.7 stamp with CLOCK_REALTIME; an
// implausible age falls back to the handling time.
func edgeFromEvent(le gpiocdev.LineEvent) Edge {
	now := time.Now()
	var ts unix.Timespec
	age := time.Duration(0)
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		age = time.Duration(ts.Nano()) - le.Timestamp
		if age < 0 || age > time.Minute {
			age = 0
		}
	}
	return Edge{Active: le.Type == gpiocdev.LineEventRisingEdge, Time: now.Add(-age)}
}

type chipInput struct {
	line *gpiocdev.Line
	deb  *Debouncer
}

func (in *chipInput) Active() (bool, error) {
	v, err := in.line.Value()
	return v == 1, err
}

// Close releases the line; gpiocdev waits for a running handler to return.
func (in *chipInput) Close() error {
	err := in.line.Close()
	if in.deb != nil {
		in.deb.Stop()
	}
	return err
}

// OpenOutput implements [Backend].
func (c Chip) OpenOutput(cfg OutputConfig, initial bool) (OutputLine, error) {
	chip, off, err := resolve(cfg.LineRef)
	if err != nil {
		return nil, err
	}
	l, err := gpiocdev.RequestLine(chip, off, outputOptions(c.consumer(), cfg, initial)...)
	if err != nil {
		return nil, fmt.Errorf("request line %d on %s: %w", off, chip, err)
	}
	return chipOutput{l}, nil
}

type chipOutput struct{ line *gpiocdev.Line }

func (o chipOutput) Set(active bool) error {
	v := 0
	if active {
		v = 1
	}
	return o.line.SetValue(v)
}

func (o chipOutput) Close() error { return o.line.Close() }
