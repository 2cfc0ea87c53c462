package gpio

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// WatchBuffer is the capacity of a [Sim.Watch] channel.
const WatchBuffer = 256

// Sim is an in-memory [Backend] for machines without GPIO: the daemon's
// default on a laptop, and the backend of this package's tests. Lines are
// known by the Name of their InputConfig or OutputConfig (for a [Panel]: the
// button and LED names, [RelayName] and [BellName]); the line reference is
// ignored.
//
// Virtual buttons are driven with [Sim.Press], [Sim.Release], [Sim.Set] and
// [Sim.Click]; the handler runs on the caller's goroutine. The Sim models a
// kernel without debounce support, so debounced inputs use the software
// [Debouncer]. Levels are observed with [Sim.Snapshot] and [Sim.Watch].
// Opening a name that is open fails, as a busy line does.
//
// The zero value is not usable; call [NewSim]. All methods are safe for
// concurrent use.
type Sim struct {
	mu       sync.Mutex
	lines    map[string]*simLine
	order    []string // first-open order, for display
	watchers map[chan Change]struct{}
	dropped  atomic.Uint64
}

type simLine struct {
	name   string
	output bool
	open   bool
	active bool
	since  time.Time

	hmu     sync.Mutex // serialises handler calls against Close
	handler EdgeHandler
	deb     *Debouncer
}

// Change is one level change seen by the [Sim].
type Change struct {
	Name   string
	Output bool // an output (LED, relay, bell) rather than a button
	Active bool
	Time   time.Time
}

// LineState is the state of one simulated line.
type LineState struct {
	Name   string
	Output bool
	Open   bool
	Active bool
	// Since is when the line took its level.
	Since time.Time
}

// State is a snapshot of every line a [Sim] has seen, in first-open order.
type State struct {
	Lines []LineState
}

// NewSim returns an empty simulator.
func NewSim() *Sim {
	return &Sim{lines: map[string]*simLine{}, watchers: map[chan Change]struct{}{}}
}

func (s *Sim) claim(name string, output bool) (*simLine, error) {
	if name == "" {
		return nil, fmt.Errorf("sim: open line: empty name")
	}
	l, ok := s.lines[name]
	if !ok {
		l = &simLine{name: name, output: output, since: time.Now()}
		s.lines[name] = l
		s.order = append(s.order, name)
	}
	if l.open {
		return nil, fmt.Errorf("sim: open %q: line busy", name)
	}
	l.output = output
	l.open = true
	return l, nil
}

// OpenInput implements [Backend]. The input starts inactive unless it was
// left active by an earlier user.
func (s *Sim) OpenInput(cfg InputConfig, h EdgeHandler) (InputLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.claim(cfg.Name, false)
	if err != nil {
		return nil, err
	}
	l.handler = h
	l.deb = nil
	if cfg.Debounce > 0 {
		l.deb = NewDebouncer(cfg.Debounce, h)
		l.handler = l.deb.Edge
	}
	return simInput{s, l}, nil
}

// OpenOutput implements [Backend].
func (s *Sim) OpenOutput(cfg OutputConfig, initial bool) (OutputLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.claim(cfg.Name, true)
	if err != nil {
		return nil, err
	}
	s.setLocked(l, initial, time.Now())
	return simOutput{s, l}, nil
}

// setLocked records a level and notifies watchers. s.mu must be held.
func (s *Sim) setLocked(l *simLine, active bool, now time.Time) bool {
	if l.active == active {
		return false
	}
	l.active = active
	l.since = now
	c := Change{Name: l.name, Output: l.output, Active: active, Time: now}
	for ch := range s.watchers {
		select {
		case ch <- c:
		default:
			s.dropped.Add(1)
		}
	}
	return true
}

type simInput struct {
	s *Sim
	l *simLine
}

func (in simInput) Active() (bool, error) {
	in.s.mu.Lock()
	defer in.s.mu.Unlock()
	if !in.l.open {
		return false, ErrClosed
	}
	return in.l.active, nil
}

func (in simInput) Close() error {
	in.l.hmu.Lock()
	defer in.l.hmu.Unlock()
	in.s.mu.Lock()
	defer in.s.mu.Unlock()
	if !in.l.open {
		return ErrClosed
	}
	in.l.open = false
	in.l.handler = nil
	if in.l.deb != nil {
		in.l.deb.Stop()
	}
	return nil
}

type simOutput struct {
	s *Sim
	l *simLine
}

func (o simOutput) Set(active bool) error {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if !o.l.open {
		return ErrClosed
	}
	o.s.setLocked(o.l, active, time.Now())
	return nil
}

func (o simOutput) Close() error {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if !o.l.open {
		return ErrClosed
	}
	o.l.open = false
	return nil
}

// Set drives the virtual input name to active (pressed) or inactive, as a
// raw edge: debouncing, if configured, applies. Setting the level it already
// has does nothing.
func (s *Sim) Set(name string, active bool) error {
	s.mu.Lock()
	l, ok := s.lines[name]
	if !ok || l.output {
		s.mu.Unlock()
		return fmt.Errorf("sim: input %q: %w", name, ErrUnknownName)
	}
	s.mu.Unlock()

	l.hmu.Lock()
	defer l.hmu.Unlock()
	now := time.Now()
	s.mu.Lock()
	changed := s.setLocked(l, active, now)
	h := l.handler
	s.mu.Unlock()
	if changed && h != nil {
		h(Edge{Active: active, Time: now})
	}
	return nil
}

// Press presses the virtual button name.
func (s *Sim) Press(name string) error { return s.Set(name, true) }

// Release releases the virtual button name.
func (s *Sim) Release(name string) error { return s.Set(name, false) }

// Click presses name, holds it for hold and releases it. It returns early,
// releasing the button, when ctx ends.
func (s *Sim) Click(ctx context.Context, name string, hold time.Duration) error {
	if err := s.Press(name); err != nil {
		return err
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	if err := s.Release(name); err != nil {
		return err
	}
	return ctx.Err()
}

// Level returns the level of the named line.
func (s *Sim) Level(name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lines[name]
	if !ok {
		return false, fmt.Errorf("sim: line %q: %w", name, ErrUnknownName)
	}
	return l.active, nil
}

// Snapshot returns the state of every line the Sim has seen.
func (s *Sim) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Lines: make([]LineState, 0, len(s.order))}
	for _, n := range s.order {
		l := s.lines[n]
		st.Lines = append(st.Lines, LineState{Name: n, Output: l.output, Open: l.open, Active: l.active, Since: l.since})
	}
	return st
}

// Watch returns a channel receiving every level change from now on, until
// ctx ends, when it is closed. A watcher that falls more than [WatchBuffer]
// changes behind loses changes (counted by [Sim.Dropped]); take a Snapshot
// to resynchronise.
func (s *Sim) Watch(ctx context.Context) <-chan Change {
	ch := make(chan Change, WatchBuffer)
	s.mu.Lock()
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.watchers, ch)
		close(ch)
		s.mu.Unlock()
	})
	return ch
}

// Dropped returns how many changes watchers have lost.
func (s *Sim) Dropped() uint64 { return s.dropped.Load() }
