package gpio_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/intercomd/intercomd/hw/gpio"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// panelConfig is a small panel: two buttons, two LEDs, a relay and a bell.
func panelConfig() gpio.Config {
	return gpio.Config{
		Buttons: []gpio.ButtonConfig{
			{Name: "call", Line: "GPIO17", ActiveLow: true, Bias: gpio.BiasPullUp},
			{Name: "door", Line: "GPIO27", ActiveLow: true, Bias: gpio.BiasPullUp, Debounce: 20 * time.Millisecond},
		},
		LEDs: []gpio.LEDConfig{
			{Name: "status", Line: "GPIO22"},
			{Name: "calling", Chip: "gpiochip0", Offset: 23},
		},
		Relay: gpio.RelayConfig{Line: "GPIO5", Pulse: 3 * time.Second, Max: 10 * time.Second},
		Bell:  gpio.RelayConfig{Line: "GPIO6"},
	}
}

// openSim opens cfg on a fresh Sim. The panel is closed when the test ends.
func openSim(t *testing.T, cfg gpio.Config) (*gpio.Panel, *gpio.Sim) {
	t.Helper()
	sim := gpio.NewSim()
	p, err := gpio.Open(cfg, sim, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, sim
}

// recv returns the next event, failing if none is ready once every
// goroutine of the bubble is blocked.
func recv(t *testing.T, p *gpio.Panel) gpio.ButtonEvent {
	t.Helper()
	synctest.Wait()
	select {
	case ev := <-p.Events():
		return ev
	default:
		t.Fatalf("no button event")
		return gpio.ButtonEvent{}
	}
}

// noEvent fails if an event is ready once every goroutine is blocked.
func noEvent(t *testing.T, p *gpio.Panel) {
	t.Helper()
	synctest.Wait()
	select {
	case ev := <-p.Events():
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func level(t *testing.T, sim *gpio.Sim, name string) bool {
	t.Helper()
	v, err := sim.Level(name)
	must(t, err)
	return v
}

func TestPressAndLongPressAtThreshold(t *testing.T) {
	cases := []struct {
		hold time.Duration
		want gpio.Gesture
	}{
		{10 * time.Millisecond, gpio.GesturePress},
		{1499 * time.Millisecond, gpio.GesturePress},
		{1500 * time.Millisecond, gpio.GestureLongPress},
		{1501 * time.Millisecond, gpio.GestureLongPress},
		{10 * time.Second, gpio.GestureLongPress},
	}
	for _, c := range cases {
		t.Run(c.hold.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, sim := openSim(t, panelConfig())
				start := time.Now()
				must(t, sim.Press("call"))
				time.Sleep(c.hold)
				synctest.Wait()
				if c.want == gpio.GestureLongPress {
					// Reported at the threshold, while still held.
					ev := recv(t, p)
					if ev.Gesture != gpio.GestureLongPress || ev.Button != "call" || !ev.Time.Equal(start) || ev.Held != gpio.DefaultLongPress {
						t.Fatalf("held %v: got %+v, want long-press of call at %v", c.hold, ev, start)
					}
					must(t, sim.Release("call"))
					noEvent(t, p) // the release adds nothing
					return
				}
				noEvent(t, p) // nothing while held below the threshold
				must(t, sim.Release("call"))
				ev := recv(t, p)
				if ev.Gesture != gpio.GesturePress || ev.Held != c.hold || !ev.Time.Equal(start.Add(c.hold)) {
					t.Fatalf("held %v: got %+v, want press held %v", c.hold, ev, c.hold)
				}
				noEvent(t, p)
			})
		})
	}
}

func TestLongPressFiresWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := panelConfig()
		cfg.Buttons[0].LongPress = 700 * time.Millisecond
		p, sim := openSim(t, cfg)
		start := time.Now()
		must(t, sim.Press("call"))
		ev := <-p.Events() // blocks until the bubble's clock reaches the threshold
		if got := time.Since(start); got != 700*time.Millisecond {
			t.Fatalf("long press delivered after %v, want 700ms", got)
		}
		if !level(t, sim, "call") {
			t.Fatal("button no longer held")
		}
		if ev.Gesture != gpio.GestureLongPress {
			t.Fatalf("got %v, want long-press", ev.Gesture)
		}
		// A second hold on the same button is a new gesture.
		must(t, sim.Release("call"))
		must(t, sim.Click(context.Background(), "call", 100*time.Millisecond))
		if ev := recv(t, p); ev.Gesture != gpio.GesturePress || ev.Held != 100*time.Millisecond {
			t.Fatalf("got %+v, want press held 100ms", ev)
		}
	})
}

// bounce drives a contact that chatters for a few milliseconds before it
// settles at final.
func bounce(t *testing.T, sim *gpio.Sim, name string, final bool) {
	t.Helper()
	for _, gap := range []time.Duration{2, 1, 3, 1, 4} {
		must(t, sim.Set(name, final))
		time.Sleep(gap * time.Millisecond)
		must(t, sim.Set(name, !final))
		time.Sleep(gap * time.Millisecond)
	}
	must(t, sim.Set(name, final))
}

func TestBouncesShorterThanDebounceGiveOnePress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig()) // "door" debounces 20ms
		bounce(t, sim, "door", true)
		time.Sleep(300 * time.Millisecond)
		bounce(t, sim, "door", false)
		time.Sleep(100 * time.Millisecond)
		ev := recv(t, p)
		if ev.Button != "door" || ev.Gesture != gpio.GesturePress {
			t.Fatalf("got %+v, want one press of door", ev)
		}
		// Held from the last press edge (22 ms) to the last release edge
		// (300 ms later, plus 22 ms of chatter).
		if ev.Held != 322*time.Millisecond {
			t.Fatalf("held %v, want 322ms", ev.Held)
		}
		noEvent(t, p)
	})
}

func TestBouncesWithoutDebounceGiveManyPresses(t *testing.T) {
	// The same chatter on the undebounced "call" button: shows the debounce
	// test above measures the debouncer, not the chatter.
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		bounce(t, sim, "call", true)
		time.Sleep(300 * time.Millisecond)
		bounce(t, sim, "call", false)
		synctest.Wait()
		if n := len(p.Events()); n < 5 {
			t.Fatalf("%d events from raw chatter, want many", n)
		}
	})
}

func TestDebouncerDropsGlitches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []gpio.Edge
		d := gpio.NewDebouncer(10*time.Millisecond, func(e gpio.Edge) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		})
		defer d.Stop()
		t0 := time.Now()
		d.Edge(gpio.Edge{Active: true, Time: time.Now()})
		time.Sleep(9 * time.Millisecond)
		d.Edge(gpio.Edge{Active: false, Time: time.Now()}) // glitch back within the period
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		// The first settled level is delivered, stamped with its edge.
		if len(got) != 1 || got[0].Active || !got[0].Time.Equal(t0.Add(9*time.Millisecond)) {
			t.Fatalf("got %v, want one inactive edge at 9ms", got)
		}
		mu.Unlock()

		d.Edge(gpio.Edge{Active: true, Time: time.Now()})
		time.Sleep(5 * time.Millisecond)
		d.Edge(gpio.Edge{Active: false, Time: time.Now()})
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if len(got) != 1 {
			t.Fatalf("a glitch ending at the reported level was delivered: %v", got)
		}
		mu.Unlock()

		d.Edge(gpio.Edge{Active: true, Time: time.Now()})
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if len(got) != 2 || !got[1].Active {
			t.Fatalf("a stable level was not delivered: %v", got)
		}
		mu.Unlock()
	})
}

// A level held for the whole period counts even when its timer runs late:
// the next edge, stamped a period or more after it, delivers it first.
func TestDebouncerTimerLate(t *testing.T) {
	var got []gpio.Edge
	d := gpio.NewDebouncer(time.Hour, func(e gpio.Edge) { got = append(got, e) })
	defer d.Stop()
	t0 := time.Now()
	d.Edge(gpio.Edge{Active: true, Time: t0})
	d.Edge(gpio.Edge{Active: false, Time: t0.Add(time.Hour + time.Millisecond)})
	if len(got) != 1 || !got[0].Active || !got[0].Time.Equal(t0) {
		t.Fatalf("got %v, want the press at t0 delivered when the release came", got)
	}
	// A bounce shorter than the period is still nothing.
	d.Edge(gpio.Edge{Active: true, Time: t0.Add(time.Hour + 2*time.Millisecond)})
	if len(got) != 1 {
		t.Fatalf("a bounce was delivered: %v", got)
	}
}

// watchLine collects the changes of one line until the returned stop
// function is called; it returns them as offsets from t0.
type step struct {
	at     time.Duration
	active bool
}

func (s step) String() string { return fmt.Sprintf("%v@%v", s.active, s.at) }

func watchLine(sim *gpio.Sim, name string) (stop func(t0 time.Time) []step) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := sim.Watch(ctx)
	return func(t0 time.Time) []step {
		synctest.Wait()
		cancel()
		var out []step
		for c := range ch {
			if c.Name == name {
				out = append(out, step{c.Time.Sub(t0), c.Active})
			}
		}
		return out
	}
}

func steps(on bool, ms ...int) []step {
	out := make([]step, len(ms))
	for i, m := range ms {
		out[i] = step{time.Duration(m) * time.Millisecond, on}
		on = !on
	}
	return out
}

func TestLEDPatterns(t *testing.T) {
	cases := []struct {
		pattern gpio.Pattern
		want    []step // changes in the first 2.1 s
	}{
		{gpio.PatternOn, steps(true, 0)},
		{gpio.PatternOff, nil},
		{gpio.PatternSlowBlink, steps(true, 0, 500, 1000, 1500, 2000)},
		{gpio.PatternFastBlink, steps(true, 0, 125, 250, 375, 500, 625, 750, 875, 1000, 1125, 1250, 1375, 1500, 1625, 1750, 1875, 2000)},
		{gpio.PatternHeartbeat, steps(true, 0, 125, 250, 375, 1000, 1125, 1250, 1375, 2000)},
	}
	for _, c := range cases {
		t.Run(c.pattern.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, sim := openSim(t, panelConfig())
				time.Sleep(333 * time.Millisecond) // patterns start when set, not on a global grid
				stop := watchLine(sim, "status")
				t0 := time.Now()
				must(t, p.SetLED("status", c.pattern))
				time.Sleep(2100 * time.Millisecond)
				if got := stop(t0); !slices.Equal(got, c.want) {
					t.Fatalf("%v:\n got %v\nwant %v", c.pattern, got, c.want)
				}
				if got, _ := p.LED("status"); got != c.pattern {
					t.Fatalf("LED reports %v, want %v", got, c.pattern)
				}

				// Off stops it at once, for good.
				stop = watchLine(sim, "status")
				t1 := time.Now()
				must(t, p.SetLED("status", gpio.PatternOff))
				time.Sleep(3 * time.Second)
				got := stop(t1)
				if level(t, sim, "status") || len(got) > 1 || (len(got) == 1 && got[0] != (step{0, false})) {
					t.Fatalf("after off: changes %v, level %v", got, level(t, sim, "status"))
				}
			})
		})
	}
}

func TestLEDsBlinkInPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		must(t, p.SetLED("status", gpio.PatternSlowBlink))
		time.Sleep(300 * time.Millisecond)
		stopA := watchLine(sim, "status")
		stopB := watchLine(sim, "calling")
		t0 := time.Now()
		must(t, p.SetLED("calling", gpio.PatternSlowBlink))
		time.Sleep(1100 * time.Millisecond)
		a, b := stopA(t0), stopB(t0)
		// "status" was on and restarts in phase with "calling".
		if want := steps(false, 500, 1000); !slices.Equal(a, want) {
			t.Fatalf("status: got %v, want %v", a, want)
		}
		if want := steps(true, 0, 500, 1000); !slices.Equal(b, want) {
			t.Fatalf("calling: got %v, want %v", b, want)
		}
		if err := p.SetLED("nope", gpio.PatternOn); !errors.Is(err, gpio.ErrUnknownName) {
			t.Fatalf("unknown LED: %v", err)
		}
		if err := p.SetLED("status", gpio.PatternUnknown); err == nil {
			t.Fatal("PatternUnknown accepted")
		}
	})
}

func TestRelayPulseLength(t *testing.T) {
	cases := []struct {
		name   string
		pulse  time.Duration
		wantOn time.Duration
	}{
		{"default", 0, 3 * time.Second},
		{"given", 1200 * time.Millisecond, 1200 * time.Millisecond},
		{"clamped to max", time.Hour, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, sim := openSim(t, panelConfig())
				stop := watchLine(sim, gpio.RelayName)
				t0 := time.Now()
				must(t, p.Relay().Pulse(c.pulse))
				if !p.Relay().Energised() {
					t.Fatal("not energised")
				}
				time.Sleep(time.Minute)
				if got, want := stop(t0), steps(true, 0, int(c.wantOn/time.Millisecond)); !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
				if p.Relay().Energised() {
					t.Fatal("still energised")
				}
			})
		})
	}
}

func TestRepeatedPulseNeverExceedsMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig()) // pulse 3 s, max 10 s
		r := p.Relay()
		stop := watchLine(sim, gpio.RelayName)
		t0 := time.Now()
		must(t, r.Pulse(0)) // until 3 s
		time.Sleep(2 * time.Second)
		must(t, r.Pulse(3*time.Second)) // extended to 5 s
		time.Sleep(time.Second)
		must(t, r.Pulse(time.Second)) // 4 s: never shortened, still 5 s
		time.Sleep(1500 * time.Millisecond)
		must(t, r.Pulse(8*time.Second)) // 12.5 s, capped at 10 s
		for range 8 {
			time.Sleep(time.Second)
			must(t, r.Pulse(0)) // still capped at 10 s, and after that a new opening
		}
		// Released at 10 s; re-energised at 10.5 s, a new opening that the
		// pulses at 11.5 and 12.5 s extend to 15.5 s.
		time.Sleep(time.Minute)
		got := stop(t0)
		want := []step{{0, true}, {10 * time.Second, false}, {10500 * time.Millisecond, true}, {15500 * time.Millisecond, false}}
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		// Twelve requests, two pulses driven: Pulses counts the latter.
		if n := r.Pulses(); n != 2 {
			t.Fatalf("Pulses() = %d, want the 2 openings driven", n)
		}
	})
}

func TestHaltTurnsEverythingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		must(t, p.Relay().Pulse(0))
		must(t, p.Bell().Pulse(0))
		must(t, p.SetLED("status", gpio.PatternOn))
		must(t, p.SetLED("calling", gpio.PatternFastBlink))
		time.Sleep(60 * time.Millisecond)
		stop := watchLine(sim, "calling")
		must(t, p.Halt())
		must(t, p.Halt()) // idempotent
		for _, n := range []string{gpio.RelayName, gpio.BellName, "status", "calling"} {
			if level(t, sim, n) {
				t.Errorf("%s still active after Halt", n)
			}
		}
		if p.Relay().Energised() || p.Bell().Energised() {
			t.Error("relay or bell reports energised")
		}
		time.Sleep(5 * time.Second)
		if got := stop(time.Time{}); len(got) != 1 {
			t.Errorf("LED changed after Halt: %v", got)
		}
		if level(t, sim, gpio.RelayName) {
			t.Error("relay came back")
		}
		// The panel stays usable after Halt.
		must(t, p.Relay().Pulse(time.Second))
		if !level(t, sim, gpio.RelayName) {
			t.Error("relay not energised after Halt")
		}
	})
}

func TestCloseDuringPulseDeEnergises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		must(t, p.Relay().Pulse(0))
		must(t, p.SetLED("status", gpio.PatternHeartbeat))
		time.Sleep(time.Second)
		must(t, p.Close())
		must(t, p.Close())
		for _, ls := range sim.Snapshot().Lines {
			if ls.Active || ls.Open {
				t.Errorf("after Close: %+v", ls)
			}
		}
		if err := p.Relay().Pulse(0); !errors.Is(err, gpio.ErrClosed) {
			t.Errorf("Pulse after Close: %v", err)
		}
		if err := p.SetLED("status", gpio.PatternOn); !errors.Is(err, gpio.ErrClosed) {
			t.Errorf("SetLED after Close: %v", err)
		}
		must(t, p.Halt())
		if _, ok := <-p.Events(); ok {
			t.Error("Events not closed")
		}
		// Lines are free again.
		p2, err := gpio.Open(panelConfig(), sim, testLogger(t))
		must(t, err)
		must(t, p2.Close())
	})
}

// orderBackend records the order in which lines are opened.
type orderBackend struct {
	gpio.Backend
	mu      sync.Mutex
	opened  []string
	failing string
}

func (b *orderBackend) note(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened = append(b.opened, name)
	if name == b.failing {
		return errors.New("device or resource busy")
	}
	return nil
}

func (b *orderBackend) OpenInput(cfg gpio.InputConfig, h gpio.EdgeHandler) (gpio.InputLine, error) {
	if err := b.note(cfg.Name); err != nil {
		return nil, err
	}
	return b.Backend.OpenInput(cfg, h)
}

func (b *orderBackend) OpenOutput(cfg gpio.OutputConfig, initial bool) (gpio.OutputLine, error) {
	if err := b.note(cfg.Name); err != nil {
		return nil, err
	}
	return b.Backend.OpenOutput(cfg, initial)
}

func TestOpenReleasesRelayFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := gpio.NewSim()
		// A previous process died with the relay energised.
		l, err := sim.OpenOutput(gpio.OutputConfig{Name: gpio.RelayName}, true)
		must(t, err)
		must(t, l.Close())
		ctx, cancel := context.WithCancel(context.Background())
		changes := sim.Watch(ctx)

		b := &orderBackend{Backend: sim}
		p, err := gpio.Open(panelConfig(), b, testLogger(t))
		must(t, err)
		defer p.Close()
		if want := []string{gpio.RelayName, gpio.BellName, "status", "calling", "call", "door"}; !slices.Equal(b.opened, want) {
			t.Fatalf("open order %v, want %v", b.opened, want)
		}
		synctest.Wait()
		cancel()
		first := <-changes
		if first.Name != gpio.RelayName || first.Active {
			t.Fatalf("first change %+v, want the relay released", first)
		}
	})
}

func TestOpenFailureLeavesNothingOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := gpio.NewSim()
		b := &orderBackend{Backend: sim, failing: "door"}
		_, err := gpio.Open(panelConfig(), b, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), `button "door"`) || !strings.Contains(err.Error(), "GPIO27") {
			t.Fatalf("error %v does not name the button and its line", err)
		}
		for _, ls := range sim.Snapshot().Lines {
			if ls.Open || (ls.Output && ls.Active) {
				t.Errorf("left behind: %+v", ls)
			}
		}
	})
}

func TestStuckConsumerDropsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		const extra = 5
		for range gpio.EventBuffer + extra {
			must(t, sim.Click(context.Background(), "call", time.Millisecond)) // never blocks
		}
		synctest.Wait()
		if got := p.Dropped(); got != extra {
			t.Fatalf("dropped %d, want %d", got, extra)
		}
		if got := len(p.Events()); got != gpio.EventBuffer {
			t.Fatalf("%d events queued, want %d", got, gpio.EventBuffer)
		}
	})
}

func TestRelayOff(t *testing.T) {
	sim := gpio.NewSim()
	rc := gpio.RelayConfig{Line: "GPIO5", ActiveLow: true}
	l, err := sim.OpenOutput(gpio.OutputConfig{Name: gpio.RelayName}, true)
	must(t, err)
	must(t, l.Close())
	must(t, gpio.RelayOff(rc, sim))
	if level(t, sim, gpio.RelayName) {
		t.Fatal("relay still active")
	}
	if st := sim.Snapshot(); st.Lines[0].Open {
		t.Fatal("relay line left open")
	}
	must(t, gpio.RelayOff(gpio.RelayConfig{}, sim)) // no relay configured
}

func TestNoBellConfigured(t *testing.T) {
	cfg := panelConfig()
	cfg.Bell = gpio.RelayConfig{}
	p, _ := openSim(t, cfg)
	if err := p.Bell().Pulse(0); !errors.Is(err, gpio.ErrNotConfigured) {
		t.Fatalf("Pulse on a missing bell: %v", err)
	}
	if err := p.Bell().Halt(); !errors.Is(err, gpio.ErrNotConfigured) {
		t.Fatalf("Halt on a missing bell: %v", err)
	}
	must(t, p.Halt())
}

func TestConcurrentUse(t *testing.T) {
	// Run under -race: every exported method from several goroutines.
	p, sim := openSim(t, panelConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for {
			select {
			case <-p.Events():
			case <-ctx.Done():
				return
			}
		}
	})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				_ = p.SetLED("status", gpio.Pattern(1+(i+j)%5))
				_ = p.Relay().Pulse(time.Millisecond)
				_ = sim.Click(ctx, "call", 0)
				if j%10 == 0 {
					_ = p.Halt()
				}
			}
		})
	}
	wg.Wait()
	cancel()
	consumer.Wait()
	must(t, p.Close())
	if level(t, sim, gpio.RelayName) || level(t, sim, "status") {
		t.Fatal("outputs active after Close")
	}
}

func TestRenderTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, sim := openSim(t, panelConfig())
		must(t, p.SetLED("status", gpio.PatternOn))
		must(t, p.Relay().Pulse(0))
		must(t, sim.Press("call"))
		var b strings.Builder
		must(t, gpio.RenderTerminal(&b, sim.Snapshot()))
		want := "[relay: ON] [bell: off] [LED status: ●] [LED calling: ○] [button call: DOWN] [button door: up]\n"
		if b.String() != want {
			t.Fatalf("got  %q\nwant %q", b.String(), want)
		}
		must(t, sim.Release("call"))
	})
}
