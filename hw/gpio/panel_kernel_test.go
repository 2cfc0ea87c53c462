//go:build kernel

// These tests drive the [gpio.Chip] backend against a real kernel: a gpio-sim
// chip laid out like a Raspberry Pi header (one bank, 58 lines named GPIO0 to
// GPIO57). They need root, configfs and the gpio-sim module, and fail when
// gpio-sim is missing. Run them inside a guest with:
//
//	go test -tags kernel -run Kernel ./hw/gpio/
package gpio_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"github.com/warthog618/go-gpiosim"

	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/hw/gpio/gpiotest"
)

// Offsets on the simulated header; gpio-sim offsets equal the GPIO numbers.
const (
	offCall  = 17 // button, active low, pulled up
	offDoor  = 27 // button or relay, depending on the test
	offLED   = 22
	offRelay = 5
)

// childEnv makes the test binary act as a daemon that dies mid-pulse.
const childEnv = "INTERCOMD_GPIO_KILL_CHILD"

// newPiSim creates the simulated header, removed when the test ends.
func newPiSim(t *testing.T) *gpiosim.Chip { return gpiotest.PiHeader(t) }

func kernelPanel(t *testing.T, cfg gpio.Config) *gpio.Panel {
	t.Helper()
	p, err := gpio.Open(cfg, gpio.Chip{Log: testLogger(t)}, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitEvent returns the next button event or fails after a generous
// timeout (the guest is emulated and slow).
func waitEvent(t *testing.T, p *gpio.Panel) gpio.ButtonEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case ev := <-p.Events():
		return ev
	case <-ctx.Done():
		t.Fatal("no button event within 20s")
		return gpio.ButtonEvent{}
	}
}

func simLevel(t *testing.T, c *gpiosim.Chip, off int) int {
	t.Helper()
	v, err := c.Level(off)
	if err != nil {
		t.Fatalf("read level of line %d: %v", off, err)
	}
	return v
}

// press and release an active-low button by moving the simulated pull.
func press(t *testing.T, c *gpiosim.Chip, off int) {
	t.Helper()
	if err := c.Pulldown(off); err != nil {
		t.Fatal(err)
	}
}

func release(t *testing.T, c *gpiosim.Chip, off int) {
	t.Helper()
	if err := c.Pullup(off); err != nil {
		t.Fatal(err)
	}
}

func buttonConfig(debounce, long time.Duration) gpio.Config {
	return gpio.Config{Buttons: []gpio.ButtonConfig{{
		Name: "call", Line: "GPIO17", ActiveLow: true, Bias: gpio.BiasPullUp,
		Debounce: debounce, LongPress: long,
	}}}
}

func TestKernelBouncesGiveOnePress(t *testing.T) {
	c := newPiSim(t)
	p := kernelPanel(t, buttonConfig(50*time.Millisecond, 800*time.Millisecond))
	chatter := func(final func(*testing.T, *gpiosim.Chip, int), other func(*testing.T, *gpiosim.Chip, int)) {
		for range 5 {
			final(t, c, offCall)
			time.Sleep(2 * time.Millisecond)
			other(t, c, offCall)
			time.Sleep(2 * time.Millisecond)
		}
		final(t, c, offCall)
	}
	chatter(press, release)
	time.Sleep(300 * time.Millisecond)
	chatter(release, press)
	ev := waitEvent(t, p)
	if ev.Gesture != gpio.GesturePress || ev.Button != "call" {
		t.Fatalf("got %+v, want a press of call", ev)
	}
	// The next event must be this clean long press, not a second press from
	// the chatter.
	time.Sleep(200 * time.Millisecond)
	press(t, c, offCall)
	if ev := waitEvent(t, p); ev.Gesture != gpio.GestureLongPress {
		t.Fatalf("got %+v after the bounced press, want the long press", ev)
	}
	release(t, c, offCall)
}

func TestKernelPressAndLongPress(t *testing.T) {
	c := newPiSim(t)
	p := kernelPanel(t, buttonConfig(0, 400*time.Millisecond))

	before := time.Now()
	press(t, c, offCall)
	time.Sleep(100 * time.Millisecond)
	release(t, c, offCall)
	ev := waitEvent(t, p)
	if ev.Gesture != gpio.GesturePress || ev.Held < 90*time.Millisecond || ev.Held >= 400*time.Millisecond {
		t.Fatalf("got %+v, want a press held about 100ms", ev)
	}
	// The timestamp comes from the kernel's clock, converted.
	if ev.Time.Before(before) || ev.Time.After(time.Now()) {
		t.Fatalf("edge time %v outside [%v, now]", ev.Time, before)
	}

	pressedAt := time.Now()
	press(t, c, offCall)
	ev = waitEvent(t, p)
	if ev.Gesture != gpio.GestureLongPress {
		t.Fatalf("got %+v, want a long press", ev)
	}
	if waited := time.Since(pressedAt); waited < 400*time.Millisecond-20*time.Millisecond {
		t.Fatalf("long press after %v, before the 400ms threshold", waited)
	}
	// Delivered while the button is still held.
	if v, err := c.Pull(offCall); err != nil || v != gpiosim.LevelInactive {
		t.Fatalf("button no longer held: pull %d, %v", v, err)
	}
	release(t, c, offCall)
	press(t, c, offCall)
	time.Sleep(50 * time.Millisecond)
	release(t, c, offCall)
	if ev := waitEvent(t, p); ev.Gesture != gpio.GesturePress {
		t.Fatalf("after a long press, got %+v, want the next short press", ev)
	}
}

type transition struct {
	at    time.Duration
	level int
}

// sample polls a line's level until d has passed and returns its changes,
// the first being the level at the start.
func sample(t *testing.T, c *gpiosim.Chip, off int, d time.Duration) []transition {
	t.Helper()
	start := time.Now()
	var out []transition
	for time.Since(start) < d {
		v := simLevel(t, c, off)
		if len(out) == 0 || out[len(out)-1].level != v {
			out = append(out, transition{time.Since(start), v})
		}
		time.Sleep(2 * time.Millisecond)
	}
	return out
}

// durations returns how long each completed level lasted.
func durations(tr []transition) (on, off []time.Duration) {
	for i := 1; i+1 < len(tr); i++ {
		d := tr[i+1].at - tr[i].at
		if tr[i].level == 1 {
			on = append(on, d)
		} else {
			off = append(off, d)
		}
	}
	return on, off
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func near(got, want, tol time.Duration) bool { return got >= want-tol && got <= want+tol }

func TestKernelLEDPatterns(t *testing.T) {
	c := newPiSim(t)
	p := kernelPanel(t, gpio.Config{LEDs: []gpio.LEDConfig{{Name: "status", Line: "GPIO22"}}})
	if v := simLevel(t, c, offLED); v != 0 {
		t.Fatalf("LED on after Open: %d", v)
	}

	if err := p.SetLED("status", gpio.PatternFastBlink); err != nil {
		t.Fatal(err)
	}
	tr := sample(t, c, offLED, 2*time.Second)
	if tr[0].level != 1 {
		t.Fatalf("fast blink does not start lit: %v", tr)
	}
	on, off := durations(tr)
	if len(on) < 5 || len(off) < 5 || !near(median(on), 125*time.Millisecond, 40*time.Millisecond) || !near(median(off), 125*time.Millisecond, 40*time.Millisecond) {
		t.Fatalf("fast blink: on %v off %v, want about 125ms each (%v)", on, off, tr)
	}

	if err := p.SetLED("status", gpio.PatternHeartbeat); err != nil {
		t.Fatal(err)
	}
	tr = sample(t, c, offLED, 3*time.Second)
	on, off = durations(tr)
	// Off periods alternate between the short gap and the long pause.
	var short, long []time.Duration
	for _, d := range off {
		if d < 400*time.Millisecond {
			short = append(short, d)
		} else {
			long = append(long, d)
		}
	}
	if len(on) < 4 || len(short) < 2 || len(long) < 2 ||
		!near(median(on), 125*time.Millisecond, 40*time.Millisecond) ||
		!near(median(short), 125*time.Millisecond, 40*time.Millisecond) ||
		!near(median(long), 625*time.Millisecond, 60*time.Millisecond) {
		t.Fatalf("heartbeat: on %v short %v long %v (%v)", on, short, long, tr)
	}

	if err := p.SetLED("status", gpio.PatternOn); err != nil {
		t.Fatal(err)
	}
	if tr := sample(t, c, offLED, 500*time.Millisecond); len(tr) != 1 || tr[0].level != 1 {
		t.Fatalf("steady on: %v", tr)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if v := simLevel(t, c, offLED); v != 0 {
		t.Fatal("LED on after Halt")
	}
}

func TestKernelRelayPulse(t *testing.T) {
	c := newPiSim(t)
	cfg := gpio.Config{Relay: gpio.RelayConfig{Line: "GPIO5", Pulse: 500 * time.Millisecond, Max: 5 * time.Second}}
	p := kernelPanel(t, cfg)
	if v := simLevel(t, c, offRelay); v != 0 {
		t.Fatalf("relay energised after Open")
	}
	if err := p.Relay().Pulse(0); err != nil {
		t.Fatal(err)
	}
	tr := sample(t, c, offRelay, 1500*time.Millisecond)
	if len(tr) != 2 || tr[0].level != 1 || tr[1].level != 0 {
		t.Fatalf("relay levels %v, want one pulse", tr)
	}
	if got := tr[1].at - tr[0].at; !near(got, 500*time.Millisecond, 50*time.Millisecond) {
		t.Fatalf("pulse lasted %v, want 500ms ±50ms", got)
	}

	// Halt during a pulse de-energises at once, for good.
	if err := p.Relay().Pulse(time.Second); err != nil {
		t.Fatal(err)
	}
	if v := simLevel(t, c, offRelay); v != 1 {
		t.Fatal("relay not energised")
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if tr := sample(t, c, offRelay, 1500*time.Millisecond); len(tr) != 1 || tr[0].level != 0 {
		t.Fatalf("relay levels after Halt: %v", tr)
	}

	// Close during a pulse releases the line. (gpio-sim returns a released
	// line to its pull, so the level written before the release cannot be
	// read back here; the host tests cover it.)
	if err := p.Relay().Pulse(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if info := lineInfo(t, c, offRelay); info.Used {
		t.Fatalf("relay line still requested after Close: %+v", info)
	}
}

func lineInfo(t *testing.T, c *gpiosim.Chip, off int) gpiocdev.LineInfo {
	t.Helper()
	ch, err := gpiocdev.NewChip(c.DevPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	info, err := ch.LineInfo(off)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func killConfig() gpio.Config {
	return gpio.Config{Relay: gpio.RelayConfig{Line: "GPIO27", Max: 30 * time.Second}}
}

// TestKernelRelayOffAfterKill starts a copy of this test binary that opens
// the panel, energises the relay for 30 s and is killed with SIGKILL. The
// relay line is pulled up, so once the dead process's request is gone it
// reads active, as a Raspberry Pi pin keeps its last level; opening the
// panel again must release the relay before Open returns.
func TestKernelRelayOffAfterKill(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		killChild(t)
		return
	}
	c := newPiSim(t)
	if err := c.Pullup(offDoor); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKernelRelayOffAfterKill$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "energised" {
				ready <- nil
				for sc.Scan() { // drain so the child never blocks on stdout
				}
				return
			}
		}
		ready <- fmt.Errorf("child ended before energising: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("child did not energise the relay within 60s")
	}
	if info := lineInfo(t, c, offDoor); !info.Used || info.Consumer != gpio.DefaultConsumer {
		t.Fatalf("relay line not held by the child: %+v", info)
	}
	if v := simLevel(t, c, offDoor); v != 1 {
		t.Fatal("child did not energise the relay")
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if info := lineInfo(t, c, offDoor); info.Used {
		t.Fatalf("relay line still requested after SIGKILL: %+v", info)
	}
	if v := simLevel(t, c, offDoor); v != 1 {
		t.Fatal("released relay line does not read active: the test would prove nothing")
	}

	p, err := gpio.Open(killConfig(), gpio.Chip{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if v := simLevel(t, c, offDoor); v != 0 {
		t.Fatal("relay still energised after the panel was opened again")
	}
	time.Sleep(200 * time.Millisecond)
	if v := simLevel(t, c, offDoor); v != 0 || p.Relay().Energised() {
		t.Fatal("relay energised again")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// The stop hook works on a free line.
	if err := gpio.RelayOff(killConfig().Relay, gpio.Chip{}); err != nil {
		t.Fatalf("RelayOff: %v", err)
	}
}

// killChild is the child side: energise, say so, wait to be killed.
func killChild(t *testing.T) {
	p, err := gpio.Open(killConfig(), gpio.Chip{}, testLogger(t))
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if err := p.Relay().Pulse(30 * time.Second); err != nil {
		t.Fatalf("child: %v", err)
	}
	fmt.Println("energised")
	time.Sleep(50 * time.Second)
	t.Fatal("child: not killed")
}

// TestKernelInputConfigReachesTheLine: every bias and inversion a button
// can be configured with is what the kernel reports for the requested line.
func TestKernelInputConfigReachesTheLine(t *testing.T) {
	sim := newPiSim(t)
	want := map[gpio.Bias]gpiocdev.LineBias{
		gpio.BiasAsIs:     gpiocdev.LineBiasUnknown,
		gpio.BiasPullUp:   gpiocdev.LineBiasPullUp,
		gpio.BiasPullDown: gpiocdev.LineBiasPullDown,
		gpio.BiasDisabled: gpiocdev.LineBiasDisabled,
	}
	for _, bias := range gpio.Biases() {
		for _, low := range []bool{false, true} {
			p := kernelPanel(t, gpio.Config{Buttons: []gpio.ButtonConfig{
				{Name: "call", Line: "GPIO17", ActiveLow: low, Bias: bias},
			}})
			c, err := gpiocdev.NewChip(sim.DevPath())
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.LineInfo(17)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !info.Used || info.Config.Bias != want[bias] || info.Config.ActiveLow != low ||
				info.Config.EdgeDetection != gpiocdev.LineEdgeBoth {
				t.Errorf("bias %s, active_low %v: the kernel reports %+v", bias, low, info)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
