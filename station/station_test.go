package station_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/agent/agenttest"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/internal/clock/clocktest"
	"github.com/intercomd/intercomd/station"
)

// fakePanel records what the station drives.
type fakePanel struct {
	mu     sync.Mutex
	leds   map[string]gpio.Pattern
	opened int
	rung   int
	err    error
}

func (p *fakePanel) RingBell() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rung++
	return nil
}

func (p *fakePanel) SetLED(name string, pat gpio.Pattern) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leds == nil {
		p.leds = map[string]gpio.Pattern{}
	}
	p.leds[name] = pat
	return nil
}

func (p *fakePanel) OpenDoor() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.opened++
	return nil
}

func (p *fakePanel) led(name string) gpio.Pattern {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leds[name]
}

func TestAction(t *testing.T) {
	for _, tc := range []struct {
		s    calling.State
		g    gpio.Gesture
		want string
	}{
		{calling.Idle, gpio.GesturePress, "calling.Call"},
		{calling.Idle, gpio.GestureLongPress, "<nil>"},
		{calling.Ringing, gpio.GesturePress, "calling.Accept"},
		{calling.Ringing, gpio.GestureLongPress, "calling.Reject"},
		{calling.Dialing, gpio.GesturePress, "calling.Hangup"},
		{calling.Dialing, gpio.GestureLongPress, "calling.Hangup"},
		{calling.InCall, gpio.GesturePress, "calling.Hangup"},
		{calling.InCall, gpio.GestureLongPress, "calling.Hangup"},
	} {
		if got := fmt.Sprintf("%T", station.Action(tc.s, tc.g)); got != tc.want {
			t.Errorf("%s + %s = %s, want %s", tc.s, tc.g, got, tc.want)
		}
	}
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		s          calling.State
		link, door bool
		want       gpio.Pattern
	}{
		{calling.Idle, true, false, gpio.PatternOff},
		{calling.Idle, false, false, gpio.PatternSlowBlink},
		{calling.Ringing, true, false, gpio.PatternFastBlink},
		{calling.Dialing, false, false, gpio.PatternFastBlink},
		{calling.InCall, true, false, gpio.PatternOn},
		{calling.InCall, true, true, gpio.PatternHeartbeat},
		{calling.Idle, false, true, gpio.PatternHeartbeat},
	} {
		if got := station.Pattern(tc.s, tc.link, tc.door); got != tc.want {
			t.Errorf("LED for %s link=%v door=%v = %s, want %s", tc.s, tc.link, tc.door, got, tc.want)
		}
	}
}

// loop stands in for the agent's loop: Apply runs at once in state s.
type loop struct {
	s   calling.State
	ins []calling.Input
}

func (l *loop) apply(fn func(calling.State) []calling.Input) { l.ins = append(l.ins, fn(l.s)...) }

func newStation(p *fakePanel, c *clocktest.Clock, l *loop, mod func(*station.Options)) *station.Station {
	o := station.Options{
		Panel: p, LEDs: []string{"status", "porch"}, User: "door", CallType: calling.Video,
		DoorPulse: 3 * time.Second, Apply: l.apply, Clock: c,
		Online: func() []string { return []string{"door", "bob", "alice", "bob"} },
	}
	if mod != nil {
		mod(&o)
	}
	return station.New(o)
}

// The doorbell rings the configured users, or else everyone online but
// the station itself; with nobody to ring it does nothing.
func TestButtonRingsTheDoorbellTargets(t *testing.T) {
	p, c, l := &fakePanel{}, clocktest.New(time.Time{}), &loop{}
	st := newStation(p, c, l, nil)
	press := gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}
	got := st.Button(press)(calling.Idle)
	want := calling.Call{Users: []string{"alice", "bob"}, Type: calling.Video, RingGroup: true}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("press when idle = %v, want %v", got, want)
	}
	st.Configure(station.Settings{Doorbell: []string{"carol", "door"}})
	if got := st.Button(press)(calling.Idle); fmt.Sprint(got) != fmt.Sprint([]calling.Input{calling.Call{Users: []string{"carol"}, Type: calling.Video, RingGroup: true}}) {
		t.Fatalf("press with doorbell users = %v", got)
	}
	lonely := newStation(p, c, l, func(o *station.Options) { o.Online = nil })
	if got := lonely.Button(press)(calling.Idle); got != nil {
		t.Fatalf("press with nobody to ring = %v, want nothing", got)
	}
	if p.rung != 3 {
		t.Fatalf("bell rung %d times for 3 doorbell presses", p.rung)
	}
	if got := st.Button(gpio.ButtonEvent{Gesture: gpio.GestureLongPress})(calling.Ringing); fmt.Sprintf("%T", got[0]) != "calling.Reject" {
		t.Fatalf("long press when ringing = %v", got)
	}
}

// The LEDs follow the link and the state; the door shows open for the
// relay's pulse and no longer, on the clock.
func TestLEDsAndTheDoorWindow(t *testing.T) {
	p, c, l := &fakePanel{}, clocktest.New(time.Time{}), &loop{}
	var shown []string
	st := newStation(p, c, l, func(o *station.Options) {
		o.OnShow = func(s calling.State, pat gpio.Pattern) { shown = append(shown, s.String()+" "+pat.String()) }
	})
	st.Show()
	st.Link(true)
	st.Event(calling.StateChanged{From: calling.Idle, To: calling.InCall})
	if !st.Door("alice") {
		t.Fatal("the door did not open")
	}
	for _, name := range []string{"status", "porch"} {
		if got := p.led(name); got != gpio.PatternHeartbeat {
			t.Fatalf("LED %s = %s while the door is open, want heartbeat", name, got)
		}
	}
	c.Advance(3*time.Second - time.Millisecond)
	if got := p.led("status"); got != gpio.PatternHeartbeat {
		t.Fatalf("LED = %s before the pulse ended, want heartbeat", got)
	}
	c.Advance(time.Millisecond)
	if got := p.led("status"); got != gpio.PatternOn {
		t.Fatalf("LED = %s after the pulse, want on (in a call)", got)
	}
	st.Link(false)
	st.Event(calling.StateChanged{From: calling.InCall, To: calling.Idle})
	want := []string{
		"idle slow-blink", "idle off", "in_call on", "in_call heartbeat", "in_call on",
		"in_call on", "idle slow-blink",
	}
	if !slices.Equal(shown, want) {
		t.Fatalf("shown\n%s\nwant\n%s", strings.Join(shown, "\n"), strings.Join(want, "\n"))
	}
	if p.opened != 1 {
		t.Fatalf("relay pulsed %d times, want 1", p.opened)
	}
	if len(l.ins) != 0 {
		t.Fatalf("the door window stepped inputs: %v", l.ins)
	}
	p.err = station.ErrNoRelay
	if st.Door("alice") {
		t.Fatal("Door reported open without a relay")
	}
}

func TestAutoAnswer(t *testing.T) {
	p, c, l := &fakePanel{}, clocktest.New(time.Time{}), &loop{}
	st := newStation(p, c, l, nil)
	if got := st.Event(calling.Invited{Sponsor: "alice"}); got != nil {
		t.Fatalf("without auto-answer an invitation gave %v", got)
	}
	st.Configure(station.Settings{AutoAnswer: true})
	if got := st.Event(calling.Invited{Sponsor: "alice"}); len(got) != 1 || fmt.Sprintf("%T", got[0]) != "calling.Accept" {
		t.Fatalf("with auto-answer an invitation gave %v, want Accept", got)
	}
}

// A press is read against the state of the call when the agent steps it,
// not when the button was pressed: an invitation that reaches the agent
// between the two is answered, where reading the state first would have
// rung the doorbell on top of it.
func TestPressAnswersAnInvitationThatArrivedFirst(t *testing.T) {
	tr := &agenttest.Transport{}
	var a *agent.Agent
	st := station.New(station.Options{
		Panel: &fakePanel{}, User: "door", CallType: calling.Audio,
		Online: func() []string { return []string{"alice"} },
		Apply:  func(fn func(calling.State) []calling.Input) { a.Apply(fn) },
	})
	a = agent.New(agent.Options{
		Calling:   calling.Config{User: "door", Session: "s1"},
		Transport: tr,
		OnEvent:   st.Event,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := a.Do(wait, calling.Login{}); err != nil {
		t.Fatal(err)
	}

	// Hold the loop, as a busy moment would, while the invitation and the
	// press queue up behind it.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = a.Tick(wait, func() { close(held); <-hold }) }()
	<-held
	a.Post(calling.Received{From: "alice", Msg: calling.Message{
		Type: calling.MsgInvite, Call: "c1", Invite: "i1", Users: []string{"door"},
		Media: calling.Audio, TimeoutMS: 30000, Session: "alice-phone",
	}})
	a.Apply(st.Button(gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}))
	close(hold)

	if !tr.WaitFor(func(tr *agenttest.Transport) bool { return strings.Contains(tr.Types(), "accept") }, 10*time.Second) {
		t.Fatalf("sent %q: the press did not answer the invitation", tr.Types())
	}
	if got := tr.Types(); strings.Contains(got, "invite") {
		t.Fatalf("sent %q: the press rang the doorbell over the invitation", got)
	}
}
