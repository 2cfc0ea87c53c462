package gpio

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// EventBuffer is the capacity of [Panel.Events].
const EventBuffer = 32

// Panel owns the buttons, LEDs, relay and bell of one intercom.
type Panel struct {
	log   *slog.Logger
	relay *Relay
	bell  *Relay

	events  chan ButtonEvent
	dropped atomic.Uint64
	evMu    sync.Mutex // orders sends against close(events)
	evDone  bool

	buttons []*button
	inputs  []InputLine

	ledMu   sync.Mutex
	leds    []*led
	byName  map[string]*led
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}

	closeOnce sync.Once
	closeErr  error
}

type led struct {
	name      string
	line      OutputLine
	pattern   Pattern
	step      int
	level     bool
	errLogged bool
}

// Open validates cfg, then opens its lines in this order: relay (driven
// inactive at once), bell, LEDs (off), buttons. An error names the line that
// failed, and leaves nothing open. log must not be nil.
func Open(cfg Config, b Backend, log *slog.Logger) (*Panel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	p := &Panel{
		log:     log,
		events:  make(chan ButtonEvent, EventBuffer),
		byName:  map[string]*led{},
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	fail := func(err error) (*Panel, error) {
		close(p.stopped) // the animator never started
		return nil, errors.Join(err, p.release())
	}

	if cfg.Relay.Configured() {
		line, err := openPulsed(b, RelayName, cfg.Relay)
		if err != nil {
			return fail(err)
		}
		p.relay = newRelay(RelayName, line, cfg.Relay, log)
	}
	if cfg.Bell.Configured() {
		line, err := openPulsed(b, BellName, cfg.Bell)
		if err != nil {
			return fail(err)
		}
		p.bell = newRelay(BellName, line, cfg.Bell, log)
	}
	for _, lc := range cfg.LEDs {
		line, err := b.OpenOutput(OutputConfig{Name: lc.Name, LineRef: lc.Ref(), ActiveLow: lc.ActiveLow}, false)
		if err != nil {
			return fail(fmt.Errorf("open LED %q (%s): %w", lc.Name, lc.Ref(), err))
		}
		l := &led{name: lc.Name, line: line, pattern: PatternOff}
		p.leds = append(p.leds, l)
		p.byName[lc.Name] = l
	}
	for _, bc := range cfg.Buttons {
		btn := newButton(bc.Name, bc.LongPress, p.send)
		in, err := b.OpenInput(InputConfig{
			Name: bc.Name, LineRef: bc.Ref(), ActiveLow: bc.ActiveLow,
			Bias: bc.Bias, Debounce: bc.Debounce,
		}, btn.edge)
		if err != nil {
			return fail(fmt.Errorf("open button %q (%s): %w", bc.Name, bc.Ref(), err))
		}
		p.buttons = append(p.buttons, btn)
		p.inputs = append(p.inputs, in)
	}
	go p.animate()
	log.Info("panel open", "buttons", len(cfg.Buttons), "leds", len(cfg.LEDs),
		"relay", cfg.Relay.Configured(), "bell", cfg.Bell.Configured())
	return p, nil
}

// openPulsed opens a relay or bell line driven inactive.
func openPulsed(b Backend, name string, rc RelayConfig) (OutputLine, error) {
	line, err := b.OpenOutput(OutputConfig{Name: name, LineRef: rc.Ref(), ActiveLow: rc.ActiveLow}, false)
	if err != nil {
		return nil, fmt.Errorf("open %s (%s): %w", name, rc.Ref(), err)
	}
	return line, nil
}

// RelayOff opens the relay line of cfg, drives it inactive and releases it.
// It is meant for a process of its own run after the daemon stopped (systemd
// ExecStopPost). A config without a relay is not an error.
func RelayOff(cfg RelayConfig, b Backend) error { return OutputOff(RelayName, cfg, b) }

// OutputOff is RelayOff for the pulsed output called name (RelayName or
// BellName).
func OutputOff(name string, cfg RelayConfig, b Backend) error {
	if !cfg.Configured() {
		return nil
	}
	line, err := openPulsed(b, name, cfg)
	if err != nil {
		return err
	}
	return errors.Join(line.Set(false), line.Close())
}

// Events delivers button gestures. It is closed by Close.
func (p *Panel) Events() <-chan ButtonEvent { return p.events }

// Dropped returns how many events were dropped because the consumer of
// Events fell behind.
func (p *Panel) Dropped() uint64 { return p.dropped.Load() }

// send hands an event over without blocking.
func (p *Panel) send(ev ButtonEvent) {
	p.evMu.Lock()
	defer p.evMu.Unlock()
	if p.evDone {
		return
	}
	select {
	case p.events <- ev:
	default:
		if n := p.dropped.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8...
			p.log.Warn("button event dropped: consumer too slow", "button", ev.Button, "gesture", ev.Gesture, "dropped", n)
		}
	}
}

// Relay returns the door relay, or nil when none is configured.
func (p *Panel) Relay() *Relay { return p.relay }

// Bell returns the bell output, or nil when none is configured.
func (p *Panel) Bell() *Relay { return p.bell }

// SetLED shows pattern p on the named LED. Blinking starts with the LED on,
// at once.
func (p *Panel) SetLED(name string, pat Pattern) error {
	if !pat.Valid() {
		return fmt.Errorf("set LED %q: invalid pattern %v", name, pat)
	}
	p.ledMu.Lock()
	defer p.ledMu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	l, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("set LED %q: %w", name, ErrUnknownName)
	}
	if l.pattern == pat {
		return nil
	}
	l.pattern = pat
	l.step = 0
	p.drive(l)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// LED returns the pattern shown on the named LED.
func (p *Panel) LED(name string) (Pattern, error) {
	p.ledMu.Lock()
	defer p.ledMu.Unlock()
	l, ok := p.byName[name]
	if !ok {
		return PatternUnknown, fmt.Errorf("LED %q: %w", name, ErrUnknownName)
	}
	return l.pattern, nil
}

// drive writes l's level for its current step, if it changed. ledMu must be
// held.
func (p *Panel) drive(l *led) {
	v := l.pattern.level(l.step)
	if v == l.level && !l.errLogged {
		return
	}
	if err := l.line.Set(v); err != nil {
		if !l.errLogged {
			p.log.Error("cannot drive LED", "led", l.name, "err", err)
			l.errLogged = true
		}
		return
	}
	l.level = v
	l.errLogged = false
}

// animate steps blinking LEDs on one ticker, running only while some LED
// blinks. It returns when quit is closed.
func (p *Panel) animate() {
	defer close(p.stopped)
	ticker := time.NewTicker(Tick)
	ticker.Stop()
	restart := func() {
		p.ledMu.Lock()
		defer p.ledMu.Unlock()
		blinking := false
		for _, l := range p.leds {
			if l.pattern.blinks() {
				blinking = true
				l.step = 0
				p.drive(l)
			}
		}
		if blinking {
			ticker.Reset(Tick)
		} else {
			ticker.Stop()
		}
	}
	for {
		select {
		case <-p.quit:
			ticker.Stop()
			return
		case <-p.wake:
			restart()
		case <-ticker.C:
			// A pattern set since this tick was due restarts the phase
			// rather than advancing it.
			select {
			case <-p.wake:
				restart()
				continue
			default:
			}
			p.ledMu.Lock()
			for _, l := range p.leds {
				if l.pattern.blinks() {
					l.step++
					p.drive(l)
				}
			}
			p.ledMu.Unlock()
		}
	}
}

// Halt puts the panel in its safe state: relay and bell de-energised, every
// LED off. It is idempotent and returns the first failures joined.
func (p *Panel) Halt() error {
	var errs []error
	if p.relay != nil {
		errs = append(errs, p.relay.Halt())
	}
	if p.bell != nil {
		errs = append(errs, p.bell.Halt())
	}
	p.ledMu.Lock()
	if p.isClosed() {
		p.ledMu.Unlock()
		return errors.Join(errs...)
	}
	for _, l := range p.leds {
		l.pattern = PatternOff
		l.step = 0
		if err := l.line.Set(false); err != nil {
			errs = append(errs, fmt.Errorf("turn LED %q off: %w", l.name, err))
			continue
		}
		l.level = false
	}
	p.ledMu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return errors.Join(errs...)
}

func (p *Panel) isClosed() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// Close halts the panel, stops its goroutine, releases every line and closes
// Events. Later calls return the first call's result.
func (p *Panel) Close() error {
	p.closeOnce.Do(func() {
		herr := p.Halt()
		p.ledMu.Lock()
		close(p.quit)
		p.ledMu.Unlock()
		<-p.stopped
		p.closeErr = errors.Join(herr, p.release())
		p.log.Info("panel closed")
	})
	return p.closeErr
}

// release closes inputs first (so no more edges arrive), then the buttons'
// timers, then outputs (halting the relay and bell once more), then Events.
func (p *Panel) release() error {
	var errs []error
	for i, in := range p.inputs {
		if err := in.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release button %q: %w", p.buttons[i].name, err))
		}
	}
	for _, b := range p.buttons {
		b.stop()
	}
	errs = append(errs, p.relay.close(), p.bell.close())
	for _, l := range p.leds {
		if err := l.line.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release LED %q: %w", l.name, err))
		}
	}
	p.evMu.Lock()
	p.evDone = true
	close(p.events)
	p.evMu.Unlock()
	return errors.Join(errs...)
}
