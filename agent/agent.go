// Package agent runs a calling.Machine for a daemon or a softphone: one
// goroutine (Run) owns the machine and steps it with every input, whether a
// command from the API, a signaling message, a timer or news from media, and
// applies the effects it returns: it publishes messages through a Transport,
// starts and stops timers, hands media requests to a Media and reports
// events to subscribers.
//
// Every other goroutine (paho's handlers, pion's callbacks, GPIO handlers)
// only posts inputs with Post, Deliver or Presence, which never block: they
// copy the data into the agent's queue and return.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/ids"
)

// Transport publishes encoded messages. Implementations must not block for
// long: the agent's loop calls them.
type Transport interface {
	Send(to string, payload []byte) error
	SendGroup(group string, payload []byte) error
}

// Media carries out media requests. Do must not block; results come back
// through the agent's Post (MediaJoined, PeerJoined, PeerLeft, MediaOut...).
type Media interface {
	Do(calling.MediaEffect)
}

// Options configure an Agent.
type Options struct {
	Calling   calling.Config
	Transport Transport
	Media     Media // nil: a stand-in that only exchanges placeholder SDP (see SignalMedia)
	Logger    *slog.Logger
	// OnDoor is called from the loop when an authorised party opens the door.
	OnDoor func(by string)
	// OnDisconnect is called from the loop when this login was replaced
	// elsewhere: the owner should leave signaling without reconnecting.
	OnDisconnect func()
	// OnEffect, when set, sees every effect before it is applied, on the
	// loop (tracing and latency measurement); it must not block.
	OnEffect func(calling.Effect)
	// QueueSize bounds the input queue (default 1024).
	QueueSize int
}

// ErrQueueFull is reported when an input is dropped because the loop is
// not keeping up.
var ErrQueueFull = errors.New("agent input queue full")

type request struct {
	in   calling.Input
	fn   func()     // instead of in: run on the loop (Tick)
	done chan error // commands: the first Error event of the step, or nil
}

// Agent owns a calling.Machine. Create with New, start with Run.
type Agent struct {
	opts    Options
	log     *slog.Logger
	m       *calling.Machine
	queue   chan request
	timers  map[calling.Timer]*time.Timer
	media   Media
	state   atomic.Int32
	callID  atomic.Value // string
	dropped atomic.Int64

	mu   sync.Mutex
	subs map[chan calling.Event]struct{}
}

// New returns an Agent; nothing runs until Run.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Calling.NewID == nil {
		opts.Calling.NewID = ids.New
	}
	if opts.Calling.Session == "" {
		opts.Calling.Session = ids.New()
	}
	a := &Agent{
		opts:   opts,
		log:    opts.Logger.With("component", "calling", "user", opts.Calling.User),
		m:      calling.New(opts.Calling),
		queue:  make(chan request, opts.QueueSize),
		timers: map[calling.Timer]*time.Timer{},
		subs:   map[chan calling.Event]struct{}{},
	}
	a.media = opts.Media
	if a.media == nil {
		a.media = &SignalMedia{Post: a.Post}
	}
	a.state.Store(int32(calling.Idle))
	a.callID.Store("")
	return a
}

// Session returns this login's session ID.
func (a *Agent) Session() string { return a.opts.Calling.Session }

// User returns this agent's user ID.
func (a *Agent) User() string { return a.opts.Calling.User }

// State returns the machine's effective state; safe from any goroutine.
func (a *Agent) State() calling.State { return calling.State(a.state.Load()) }

// CallID returns the current call's ID or ""; safe from any goroutine.
func (a *Agent) CallID() string { return a.callID.Load().(string) }

// Dropped counts inputs dropped because the queue was full.
func (a *Agent) Dropped() int64 { return a.dropped.Load() }

// Post queues an input without blocking; it is dropped (and counted) if the
// queue is full.
func (a *Agent) Post(in calling.Input) {
	select {
	case a.queue <- request{in: in}:
	default:
		a.dropped.Add(1)
		a.log.Warn("input dropped: queue full", "input", fmt.Sprintf("%T", in))
	}
}

// Deliver decodes a signaling payload from an authenticated sender (and the
// group topic it came through, if any) and posts it. Malformed, oversized
// and unknown-version messages are logged and dropped; they never reach
// the machine, so they cannot disturb a call.
func (a *Agent) Deliver(from, group string, payload []byte) {
	if !calling.ValidID(from) {
		a.log.Warn("message dropped: bad sender", "from", from)
		return
	}
	msg, err := calling.Decode(payload)
	if err != nil {
		a.log.Warn("message dropped", "from", from, "group", group, "err", err)
		return
	}
	a.Post(calling.Received{From: from, Group: group, Msg: msg})
}

// Do steps a command and waits for it; the error is the one the machine
// reported for it (ErrNotLoggedIn, ErrNoCall, ...), or ctx's.
func (a *Agent) Do(ctx context.Context, in calling.Input) error {
	return a.do(ctx, request{in: in, done: make(chan error, 1)})
}

func (a *Agent) do(ctx context.Context, r request) error {
	select {
	case a.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe returns a channel of events. Events are dropped for a
// subscriber whose buffer is full, never blocking the loop. Call the
// returned function to unsubscribe.
func (a *Agent) Subscribe(buffer int) (<-chan calling.Event, func()) {
	ch := make(chan calling.Event, buffer)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}
}

func (a *Agent) publish(ev calling.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- ev:
		default:
			a.log.Warn("event dropped for a slow subscriber", "event", calling.DescribeEvent(ev))
		}
	}
}

// Run owns the machine until ctx is done. On the way out it hangs up any
// call (so the peers see it end), stops every timer and returns ctx's error.
func (a *Agent) Run(ctx context.Context) error {
	defer a.stopTimers()
	for {
		select {
		case r := <-a.queue:
			var err error
			if r.fn != nil {
				r.fn()
			} else {
				err = a.step(r.in)
			}
			if r.done != nil {
				r.done <- err
			}
		case <-ctx.Done():
			if a.m.State() != calling.Idle {
				a.step(calling.Hangup{})
			}
			return ctx.Err()
		}
	}
}

// Tick runs fn on the loop goroutine (the watchdog's proof of life) and
// waits for it.
func (a *Agent) Tick(ctx context.Context, fn func()) error {
	return a.do(ctx, request{fn: fn, done: make(chan error, 1)})
}

func (a *Agent) step(in calling.Input) error {
	if t, ok := in.(calling.TimerFired); ok {
		delete(a.timers, t.Timer)
	}
	var first error
	effects := a.m.Step(time.Now(), in)
	for _, e := range effects {
		if a.opts.OnEffect != nil {
			a.opts.OnEffect(e)
		}
		if a.log.Enabled(context.Background(), slog.LevelDebug) {
			a.log.Debug("effect", "input", fmt.Sprintf("%T", in), "effect", calling.Describe(e))
		}
		switch e := e.(type) {
		case calling.Send:
			a.send(e)
		case calling.Emit:
			if er, ok := e.Event.(calling.Error); ok && first == nil {
				first = er.Err
			}
			a.logEvent(e.Event)
			a.publish(e.Event)
		case calling.StartTimer:
			if old := a.timers[e.Timer]; old != nil {
				old.Stop()
			}
			t := e.Timer
			a.timers[t] = time.AfterFunc(e.After, func() { a.Post(calling.TimerFired{Timer: t}) })
		case calling.StopTimer:
			if old := a.timers[e.Timer]; old != nil {
				old.Stop()
				delete(a.timers, e.Timer)
			}
		case calling.Media:
			a.media.Do(e.Do)
		case calling.DoorOpen:
			a.log.Info("door opened", "by", e.By, "at", time.Now().Format(time.RFC3339))
			if a.opts.OnDoor != nil {
				a.opts.OnDoor(e.By)
			}
		case calling.Disconnect:
			if a.opts.OnDisconnect != nil {
				a.opts.OnDisconnect()
			}
		}
	}
	a.state.Store(int32(a.m.State()))
	a.callID.Store(a.m.CallID())
	return first
}

func (a *Agent) logEvent(ev calling.Event) {
	switch ev := ev.(type) {
	case calling.Error:
		a.log.Warn("calling error", "err", ev.Err)
	case calling.UserVoiceVolume:
		// too frequent to log
	case calling.StateChanged:
		a.log.Info("state", "from", ev.From.String(), "to", ev.To.String(), "call", a.m.CallID())
	default:
		a.log.Info("event", "event", calling.DescribeEvent(ev))
	}
}

func (a *Agent) send(s calling.Send) {
	b, err := calling.Encode(s.Msg)
	if err == nil {
		if s.Group != "" {
			err = a.opts.Transport.SendGroup(s.Group, b)
		} else {
			err = a.opts.Transport.Send(s.To, b)
		}
	}
	if err != nil {
		a.log.Warn("send failed", "to", s.To, "group", s.Group, "type", s.Msg.Type.String(), "err", err)
		a.publish(calling.Error{Err: fmt.Errorf("send %s: %w", s.Msg.Type, err)})
	}
}

func (a *Agent) stopTimers() {
	for k, t := range a.timers {
		t.Stop()
		delete(a.timers, k)
	}
}
