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
	ringing := calling.View{State: calling.Ringing, Call: "c1", Hub: "alice"}
	answered := ringing
	answered.Answered = true
	for _, tc := range []struct {
		v    calling.View
		g    gpio.Gesture
		want string
	}{
		{calling.View{State: calling.Idle}, gpio.GesturePress, "calling.Call"},
		{calling.View{State: calling.Idle}, gpio.GestureLongPress, "<nil>"},
		{ringing, gpio.GesturePress, "calling.Accept"},
		{ringing, gpio.GestureLongPress, "calling.Reject"},
		// Answered, the media still connecting: either gesture ends it.
		{answered, gpio.GesturePress, "calling.Hangup"},
		{answered, gpio.GestureLongPress, "calling.Hangup"},
		{calling.View{State: calling.Dialing}, gpio.GesturePress, "calling.Hangup"},
		{calling.View{State: calling.Dialing}, gpio.GestureLongPress, "calling.Hangup"},
		{calling.View{State: calling.InCall}, gpio.GesturePress, "calling.Hangup"},
		{calling.View{State: calling.InCall}, gpio.GestureLongPress, "calling.Hangup"},
	} {
		if got := fmt.Sprintf("%T", station.Action(tc.v, tc.g)); got != tc.want {
			t.Errorf("%+v + %s = %s, want %s", tc.v, tc.g, got, tc.want)
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
	idle := calling.View{State: calling.Idle}
	got := st.Button(press)(idle)
	want := calling.Call{Users: []string{"alice", "bob"}, Type: calling.Video, RingGroup: true}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("press when idle = %v, want %v", got, want)
	}
	st.Configure(station.Settings{Doorbell: []string{"carol", "door"}})
	if got := st.Button(press)(idle); fmt.Sprint(got) != fmt.Sprint([]calling.Input{calling.Call{Users: []string{"carol"}, Type: calling.Video, RingGroup: true}}) {
		t.Fatalf("press with doorbell users = %v", got)
	}
	lonely := newStation(p, c, l, func(o *station.Options) { o.Online = nil })
	if got := lonely.Button(press)(idle); got != nil {
		t.Fatalf("press with nobody to ring = %v, want nothing", got)
	}
	if p.rung != 3 {
		t.Fatalf("bell rung %d times for 3 doorbell presses", p.rung)
	}
	if got := st.Button(gpio.ButtonEvent{Gesture: gpio.GestureLongPress})(calling.View{State: calling.Ringing, Hub: "mallory"}); fmt.Sprintf("%T", got[0]) != "calling.Reject" {
		t.Fatalf("long press when ringing = %v", got)
	}
}

// With no doorbell users configured, the doorbell rings the users online
// who may call the station, never a stranger who happens to be signed in.
func TestDoorbellRingsOnlyCallers(t *testing.T) {
	p, c, l := &fakePanel{}, clocktest.New(time.Time{}), &loop{}
	st := newStation(p, c, l, func(o *station.Options) {
		o.Online = func() []string { return []string{"mallory", "bob", "alice"} }
		o.Callers = []string{"alice", "bob", "carol"}
	})
	press := gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}
	want := []calling.Input{calling.Call{Users: []string{"alice", "bob"}, Type: calling.Video, RingGroup: true}}
	if got := st.Button(press)(calling.View{State: calling.Idle}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("press = %v, want %v", got, want)
	}
	st.Configure(station.Settings{Callers: []string{}})
	if got := st.Button(press)(calling.View{State: calling.Idle}); got != nil {
		t.Fatalf("press with no callers = %v, want nothing", got)
	}
}

// A visitor's press while the station rings: a call from a resident the
// doorbell rings is answered; any other caller is declined as busy and the
// residents are rung instead.
func TestPressWhileRinging(t *testing.T) {
	p, c, l := &fakePanel{}, clocktest.New(time.Time{}), &loop{}
	st := newStation(p, c, l, func(o *station.Options) { o.Doorbell = []string{"alice", "bob"} })
	press := gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}
	if got := st.Button(press)(calling.View{State: calling.Ringing, Call: "c1", Hub: "alice"}); fmt.Sprint(got) != fmt.Sprint([]calling.Input{calling.Accept{}}) {
		t.Fatalf("press while alice calls = %v, want Accept", got)
	}
	if p.rung != 0 {
		t.Fatal("answering a resident rang the bell")
	}
	got := st.Button(press)(calling.View{State: calling.Ringing, Call: "c2", Hub: "lobby"})
	want := []calling.Input{calling.LineBusy{}, calling.Call{Users: []string{"alice", "bob"}, Type: calling.Video, RingGroup: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("press while lobby calls = %v, want %v", got, want)
	}
	if p.rung != 1 {
		t.Fatalf("bell rung %d times, want once", p.rung)
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
	st, a, tr, wait := runStation(t)
	// Hold the loop, as a busy moment would, while the invitation and the
	// press queue up behind it.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = a.Tick(wait, func() { close(held); <-hold }) }()
	<-held
	a.Post(aliceInvites("c1"))
	a.ApplyView(st.Button(gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}))
	close(hold)

	if !tr.WaitFor(func(tr *agenttest.Transport) bool { return strings.Contains(tr.Types(), "accept") }, 10*time.Second) {
		t.Fatalf("sent %q: the press did not answer the invitation", tr.Types())
	}
	if got := tr.Types(); strings.Contains(got, "invite") {
		t.Fatalf("sent %q: the press rang the doorbell over the invitation", got)
	}
}

// After the station answered and before its media connected (the hub's
// offer never comes here), a press or a long press ends the call: it
// leaves, rather than trying to answer again.
func TestPressAfterAnsweringLeaves(t *testing.T) {
	for _, g := range []gpio.Gesture{gpio.GesturePress, gpio.GestureLongPress} {
		t.Run(g.String(), func(t *testing.T) {
			st, a, tr, wait := runStation(t)
			a.Post(aliceInvites("c1"))
			a.ApplyView(st.Button(gpio.ButtonEvent{Button: "call", Gesture: gpio.GesturePress}))
			if !tr.WaitFor(func(tr *agenttest.Transport) bool { return strings.Contains(tr.Types(), "accept") }, 10*time.Second) {
				t.Fatalf("sent %q: the press did not answer", tr.Types())
			}
			a.ApplyView(st.Button(gpio.ButtonEvent{Button: "call", Gesture: g}))
			if !tr.WaitFor(func(tr *agenttest.Transport) bool { return strings.HasSuffix(tr.Types(), "leave") }, 10*time.Second) {
				t.Fatalf("sent %q: the %s did not end the answered call", tr.Types(), g)
			}
			if err := a.Tick(wait, func() {}); err != nil || a.State() != calling.Idle {
				t.Fatalf("state %s after leaving (%v)", a.State(), err)
			}
		})
	}
}

// runStation runs a station on a real agent (user door, logged in) with a
// recording transport; everything stops when the test ends.
func runStation(t *testing.T) (*station.Station, *agent.Agent, *agenttest.Transport, context.Context) {
	t.Helper()
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
	t.Cleanup(func() { cancel(); <-done })
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(stop)
	if err := a.Do(wait, calling.Login{}); err != nil {
		t.Fatal(err)
	}
	return st, a, tr, wait
}

func aliceInvites(call string) calling.Received {
	return calling.Received{From: "alice", Msg: calling.Message{
		Type: calling.MsgInvite, Call: call, Invite: "i-" + call, Users: []string{"door"},
		Media: calling.Audio, TimeoutMS: 30000, Session: "alice-phone",
	}}
}
