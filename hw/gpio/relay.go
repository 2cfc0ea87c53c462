package gpio

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// retryOff is how often a relay that failed to de-energise is driven again.
const retryOff = 250 * time.Millisecond

// Relay is a pulsed output: the door relay or the bell. Its methods are safe
// for concurrent use. A nil *Relay stands for an output the configuration
// does not have: its methods return [ErrNotConfigured].
type Relay struct {
	name  string
	line  OutputLine
	pulse time.Duration
	max   time.Duration
	log   *slog.Logger

	mu       sync.Mutex
	on       bool      // energised
	first    time.Time // when energised in this opening
	deadline time.Time // when it will be released
	timer    *time.Timer
	gen      uint64 // bumped whenever timer is replaced or cancelled
	closed   bool

	pulses atomic.Uint64 // times energised
}

func newRelay(name string, line OutputLine, cfg RelayConfig, log *slog.Logger) *Relay {
	return &Relay{name: name, line: line, pulse: cfg.Pulse, max: cfg.Max, log: log}
}

// Pulse energises the output for d, or for the configured pulse when d <= 0,
// clamped to the configured maximum. If the output is already energised, the
// opening is extended to d from now, but never beyond the maximum measured
// from when it was first energised in this opening, and never shortened.
func (r *Relay) Pulse(d time.Duration) error {
	if r == nil {
		return ErrNotConfigured
	}
	if d <= 0 {
		d = r.pulse
	}
	d = min(d, r.max)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	now := time.Now()
	if !r.on {
		if err := r.line.Set(true); err != nil {
			// A failed write may still have moved the line: release it.
			_ = r.line.Set(false)
			return fmt.Errorf("energise %s: %w", r.name, err)
		}
		r.on = true
		r.pulses.Add(1)
		r.first = now
		r.deadline = now.Add(d)
		r.log.Info("energised", "output", r.name, "for", d)
	} else {
		deadline := now.Add(d)
		if limit := r.first.Add(r.max); deadline.After(limit) {
			deadline = limit
		}
		if !deadline.After(r.deadline) {
			return nil
		}
		r.deadline = deadline
		r.log.Info("extended", "output", r.name, "until", deadline.Sub(r.first))
	}
	r.schedule(r.deadline.Sub(now))
	return nil
}

// schedule replaces the release timer. r.mu must be held.
func (r *Relay) schedule(after time.Duration) {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	r.timer = time.AfterFunc(after, func() { r.expire(gen) })
}

// expire releases the output when the timer of generation gen fires.
func (r *Relay) expire(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen || !r.on {
		return
	}
	if err := r.line.Set(false); err != nil {
		r.log.Error("cannot de-energise, retrying", "output", r.name, "err", err)
		r.schedule(retryOff)
		return
	}
	r.on = false
	r.log.Info("released", "output", r.name, "after", time.Since(r.first))
}

// Halt de-energises the output now and cancels any pending pulse. It drives
// the line even if the output is believed released, and is idempotent.
func (r *Relay) Halt() error {
	if r == nil {
		return ErrNotConfigured
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.haltLocked()
}

func (r *Relay) haltLocked() error {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.gen++
	wasOn := r.on
	if err := r.line.Set(false); err != nil {
		return fmt.Errorf("de-energise %s: %w", r.name, err)
	}
	r.on = false
	if wasOn {
		r.log.Info("halted", "output", r.name, "after", time.Since(r.first))
	}
	return nil
}

// Pulses returns how many times the output was energised: a Pulse while
// it is energised extends that pulse and is not counted.
func (r *Relay) Pulses() uint64 {
	if r == nil {
		return 0
	}
	return r.pulses.Load()
}

// Energised reports whether the output is energised.
func (r *Relay) Energised() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on
}

// close halts the output and releases its line; later calls return
// ErrClosed from Pulse.
func (r *Relay) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	herr := r.haltLocked()
	r.closed = true
	if err := r.line.Close(); err != nil {
		return fmt.Errorf("release %s: %w", r.name, err)
	}
	return herr
}
