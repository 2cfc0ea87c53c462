// Package station is the door station's behaviour on the panel: which
// calling input a button gesture means in each state of the call, which
// pattern the LEDs show for the state of the call, the signaling link and
// the door, and the window during which the door is open.
//
// A Station lives on the calling agent's loop, the one goroutine that owns
// the call: Button returns a function for agent.Agent.Apply, so a gesture
// is read against the state of the call at the moment it is stepped; Event
// is the agent's OnEvent hook, Door its OnDoor hook, Link the endpoint's
// OnLink hook, and Configure is applied through Apply too. None of them
// may be called from another goroutine, and none blocks. The hardware is
// behind the narrow Panel interface (GPIO adapts hw/gpio), so the station
// is tested without a daemon.
package station

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/internal/clock"
)

// Panel is the hardware a station drives.
type Panel interface {
	// SetLED shows p on the LED called name.
	SetLED(name string, p gpio.Pattern) error
	// OpenDoor pulses the door relay for its configured time; ErrNoRelay
	// when there is none.
	OpenDoor() error
	// RingBell pulses the bell, when there is one (nil when there is not).
	RingBell() error
}

// ErrNoRelay: the panel has no door relay.
var ErrNoRelay = errors.New("no door relay configured")

// GPIO adapts a hw/gpio panel to Panel.
type GPIO struct{ Panel *gpio.Panel }

// SetLED implements Panel.
func (g GPIO) SetLED(name string, p gpio.Pattern) error { return g.Panel.SetLED(name, p) }

// OpenDoor implements Panel.
func (g GPIO) OpenDoor() error {
	r := g.Panel.Relay()
	if r == nil {
		return ErrNoRelay
	}
	return r.Pulse(0)
}

// RingBell implements Panel.
func (g GPIO) RingBell() error {
	if err := g.Panel.Bell().Pulse(0); err != nil && !errors.Is(err, gpio.ErrNotConfigured) {
		return err
	}
	return nil
}

// Options configure a Station.
type Options struct {
	Panel Panel
	// LEDs are the names of the LEDs that show the state.
	LEDs []string
	// User is the station's own user ID, never rung by its doorbell.
	User string
	// CallType is the type of the calls the doorbell places.
	CallType calling.CallType
	// DoorPulse is how long the relay holds the door open (the relay's
	// configured pulse); the LEDs show the door open for as long.
	DoorPulse time.Duration
	// Online lists the users online now: the doorbell rings them when no
	// doorbell users are configured.
	Online func() []string
	// Apply runs a function on the agent's loop (agent.Agent.Apply): the
	// door window's end comes back through it.
	Apply func(func(calling.State) []calling.Input)
	// OnDoorbell, when set, is told of every call the doorbell places.
	OnDoorbell func(users []string)
	// OnShow, when set, sees every pattern shown, with the state it shows
	// (the simulated panel prints it).
	OnShow func(calling.State, gpio.Pattern)
	Clock  clock.Clock
	Logger *slog.Logger
	Settings
}

// Settings are what a reload of the configuration may change.
type Settings struct {
	// Doorbell are the users the doorbell rings (users and members of the
	// configured group); none rings every user online among Callers.
	Doorbell []string
	// Callers are the users who may call the station (calling.Config's
	// Callers); nil means anyone.
	Callers []string
	// AutoAnswer accepts every invitation as it arrives.
	AutoAnswer bool
}

// Station is a door station. Create with New; see the package comment for
// the goroutine its methods run on.
type Station struct {
	opts      Options
	clock     clock.Clock
	log       *slog.Logger
	state     calling.State
	linkUp    bool
	doorUntil time.Time
	doorTimer clock.Timer
}

// New returns a station showing idle with the link down; nothing is drawn
// until Show.
func New(opts Options) *Station {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Online == nil {
		opts.Online = func() []string { return nil }
	}
	return &Station{opts: opts, clock: clock.Or(opts.Clock), log: opts.Logger, state: calling.Idle}
}

// Action is the mapping of the button's gestures: idle, a press rings the
// doorbell (a calling.Call without users: the station fills them in);
// ringing, a press accepts and a long press rejects; once answered (the
// media still connecting), dialing or in a call, either hangs up. Anything
// else means nothing (nil). Button refines it: a press answers only a
// caller the doorbell would ring.
func Action(v calling.View, g gpio.Gesture) calling.Input {
	switch v.State {
	case calling.Idle:
		if g == gpio.GesturePress {
			return calling.Call{}
		}
	case calling.Ringing:
		switch {
		case v.Answered:
			return calling.Hangup{}
		case g == gpio.GestureLongPress:
			return calling.Reject{}
		}
		return calling.Accept{}
	case calling.Dialing, calling.InCall:
		return calling.Hangup{}
	}
	return nil
}

// Pattern is what the LEDs show: heartbeat while the door is open, fast
// blink while ringing or dialing, on during a call, slow blink when the
// signaling link is down, off when idle and online.
func Pattern(s calling.State, linkUp, doorOpen bool) gpio.Pattern {
	switch {
	case doorOpen:
		return gpio.PatternHeartbeat
	case s == calling.Ringing || s == calling.Dialing:
		return gpio.PatternFastBlink
	case s == calling.InCall:
		return gpio.PatternOn
	case !linkUp:
		return gpio.PatternSlowBlink
	default:
		return gpio.PatternOff
	}
}

// Button returns what a gesture of the named button does, for
// agent.Agent.ApplyView: the inputs it means in the call as the loop has
// it when it gets to them.
//
// The person pressing is a visitor who wants the residents. A press while
// the station rings answers the call only when its caller is one of the
// people the doorbell rings: a resident calling the door is answered by
// whoever stands there. Anyone else's call (a caller the residents allowed
// but do not have rung, such as another door station) is declined as busy
// and the doorbell rings the residents instead: a press never hands the
// camera and microphone to someone the doorbell would not have rung.
func (st *Station) Button(ev gpio.ButtonEvent) func(calling.View) []calling.Input {
	return func(v calling.View) []calling.Input {
		in := Action(v, ev.Gesture)
		if in == nil {
			return nil
		}
		var ins []calling.Input
		if _, ok := in.(calling.Accept); ok && !slices.Contains(st.doorbellTargets(), v.Hub) {
			st.log.Info("press while ringing for a caller the doorbell does not ring: declining it and ringing the doorbell", "caller", v.Hub)
			ins, in = append(ins, calling.LineBusy{}), calling.Call{}
		}
		if _, ok := in.(calling.Call); ok {
			if err := st.opts.Panel.RingBell(); err != nil {
				st.log.Warn("bell", "err", err)
			}
			users := st.doorbellTargets()
			if len(users) == 0 {
				st.log.Warn("doorbell pressed but nobody to ring: set calling.doorbell in the config or sign in a phone of calling.callers")
				return ins
			}
			in = calling.Call{Users: users, Type: st.opts.CallType, RingGroup: true}
			if st.opts.OnDoorbell != nil {
				st.opts.OnDoorbell(users)
			}
		}
		st.log.Info("button", "name", ev.Button, "gesture", ev.Gesture.String(), "state", v.State.String(), "action", fmt.Sprintf("%T", in))
		return append(ins, in)
	}
}

// doorbellTargets are the configured doorbell users; with none, every user
// online who may call the station (Callers). Never the station itself, at
// most calling.MaxParties-1.
func (st *Station) doorbellTargets() []string {
	users := slices.Clone(st.opts.Doorbell)
	if len(users) == 0 {
		users = st.opts.Online()
		if callers := st.opts.Callers; callers != nil {
			users = slices.DeleteFunc(users, func(u string) bool { return !slices.Contains(callers, u) })
		}
	}
	self := st.opts.User
	users = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(users))), func(u string) bool { return u == self })
	if len(users) > calling.MaxParties-1 {
		users = users[:calling.MaxParties-1]
	}
	return users
}

// Event is the agent's OnEvent hook: the LEDs follow the state, and with
// auto-answer on an invitation is accepted at once.
func (st *Station) Event(ev calling.Event) []calling.Input {
	switch ev := ev.(type) {
	case calling.StateChanged:
		st.state = ev.To
		st.Show()
	case calling.Invited:
		if st.opts.AutoAnswer {
			st.log.Info("auto-answering", "sponsor", ev.Sponsor)
			return []calling.Input{calling.Accept{}}
		}
	}
	return nil
}

// Link is the endpoint's OnLink hook.
func (st *Station) Link(up bool) {
	st.linkUp = up
	st.log.Info("signaling link", "up", up)
	st.Show()
}

// Configure applies new settings (a reload).
func (st *Station) Configure(s Settings) { st.opts.Settings = s }

// Door is the agent's OnDoor hook, for a party the machine authorised: it
// pulses the relay and shows the door open until the pulse ends. It
// reports whether the door opened.
func (st *Station) Door(by string) bool {
	if err := st.opts.Panel.OpenDoor(); err != nil {
		if errors.Is(err, ErrNoRelay) {
			st.log.Warn("door open requested but no relay is configured", "by", by)
		} else {
			st.log.Error("door relay", "by", by, "err", err)
		}
		return false
	}
	now := st.clock.Now()
	st.doorUntil = now.Add(st.opts.DoorPulse)
	if st.doorTimer != nil {
		st.doorTimer.Stop()
	}
	st.doorTimer = st.clock.AfterFunc(st.opts.DoorPulse, func() {
		st.opts.Apply(func(calling.State) []calling.Input {
			st.Show()
			return nil
		})
	})
	st.log.Info("door open", "by", by, "at", now.Format(time.RFC3339), "for", st.opts.DoorPulse)
	st.Show()
	return true
}

// Stop cancels the door window's timer (the daemon is leaving).
func (st *Station) Stop() {
	if st.doorTimer != nil {
		st.doorTimer.Stop()
	}
}

// Show sets every LED from the state, the link and the door.
func (st *Station) Show() {
	pat := Pattern(st.state, st.linkUp, st.clock.Now().Before(st.doorUntil))
	if st.opts.OnShow != nil {
		st.opts.OnShow(st.state, pat)
	}
	for _, name := range st.opts.LEDs {
		if err := st.opts.Panel.SetLED(name, pat); err != nil {
			st.log.Warn("set LED", "name", name, "err", err)
		}
	}
}
