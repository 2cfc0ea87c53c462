// Package agent runs a calling.Machine for a daemon or a softphone: one
// goroutine (Run) owns the machine and steps it with every input, whether a
// command from the API, a signaling message, a timer or news from media, and
// applies the effects it returns: it publishes messages through a Transport,
// starts and stops timers, hands media requests to a Media and reports
// events to subscribers.
//
// Every other goroutine (paho's handlers, pion's callbacks, GPIO handlers)
// only posts inputs with Post, Deliver or Apply, which never block: they
// copy the data into the agent's queue and return.
//
// The loop itself never waits on I/O: messages are handed to the Transport
// by a sender goroutine, in order, and a failed send comes back to the loop
// as an input (reported as an Error event); media requests are queued to
// Media. Code that must act on the state of the call (a button, the
// answering machine of a door station) does so on the loop through Apply
// and Options.OnEvent, so the call cannot change between reading the state
// and acting on it.
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
	"github.com/intercomd/intercomd/internal/clock"
	"github.com/intercomd/intercomd/internal/ids"
)

// Transport publishes encoded messages. Send and SendGroup may wait for the
// broker's acknowledgement, but must give up within a bounded time
// (mqttsig: Options.SendTimeout): the agent's sender goroutine calls them,
// one message at a time, in the order the machine sent them.
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
	// OnEvent, when set, sees every event on the loop, after the step that
	// emitted it; the inputs it returns are stepped at once, before any
	// other input. It must not block.
	OnEvent func(calling.Event) []calling.Input
	// Clock drives the calling timers; nil is the system clock.
	Clock clock.Clock
	// QueueSize bounds the input queue (default 1024).
	QueueSize int
	// SendQueue bounds the messages waiting for the Transport (default
	// 256); a message beyond it fails like a send that failed.
	SendQueue int
	// DrainTimeout bounds how long Run, on its way out, keeps handing
	// queued messages (the final hangup) to the Transport (default 2 s).
	DrainTimeout time.Duration
}

// ErrQueueFull is reported when an input is dropped because the loop is
// not keeping up.
var ErrQueueFull = errors.New("agent input queue full")

type request struct {
	in    calling.Input
	fn    func()                             // instead of in: run on the loop (Tick)
	apply func(calling.View) []calling.Input // instead of in: inputs chosen on the loop (ApplyView)
	done  chan error                         // commands: the first Error event of the step, or nil
}

// outgoing is a message waiting for the Transport.
type outgoing struct {
	send    calling.Send
	payload []byte
}

// Agent owns a calling.Machine. Create with New, start with Run.
type Agent struct {
	opts    Options
	log     *slog.Logger
	m       *calling.Machine
	queue   chan request
	clock   clock.Clock
	timers  map[calling.Timer]clock.Timer
	media   Media
	state   atomic.Int32
	callID  atomic.Value // string
	dropped atomic.Int64

	mu   sync.Mutex
	subs map[chan calling.Event]struct{}

	// The sender's queue.
	smu     sync.Mutex
	sq      []outgoing
	swake   chan struct{}
	sclosed bool
}

// New returns an Agent; nothing runs until Run.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = 256
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 2 * time.Second
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
		clock:  clock.Or(opts.Clock),
		timers: map[calling.Timer]clock.Timer{},
		subs:   map[chan calling.Event]struct{}{},
		swake:  make(chan struct{}, 1),
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
func (a *Agent) Post(in calling.Input) { a.enqueue(request{in: in}, fmt.Sprintf("%T", in)) }

// Apply queues fn without blocking (dropped and counted if the queue is
// full, like Post). The loop calls it with the machine's state at that
// moment and steps the inputs it returns, before any other input: the
// way to act on the state without the call changing in between. fn must
// not block.
func (a *Agent) Apply(fn func(calling.State) []calling.Input) {
	a.ApplyView(func(v calling.View) []calling.Input { return fn(v.State) })
}

// ApplyView is Apply for a function that needs more of the call than its
// state: the machine's View (the call, its hub, whether this side answered).
func (a *Agent) ApplyView(fn func(calling.View) []calling.Input) {
	a.enqueue(request{apply: fn}, "apply")
}

func (a *Agent) enqueue(r request, what string) {
	select {
	case a.queue <- r:
	default:
		a.dropped.Add(1)
		a.log.Warn("input dropped: queue full", "input", what)
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
//
// Messages still queued for the Transport then go out for at most
// Options.DrainTimeout; Run returns once the sender is done.
func (a *Agent) Run(ctx context.Context) error {
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		a.sender()
	}()
	defer func() {
		a.stopTimers()
		a.smu.Lock()
		a.sclosed = true
		a.smu.Unlock()
		a.wakeSender()
		drain := a.clock.AfterFunc(a.opts.DrainTimeout, func() {
			a.smu.Lock()
			if n := len(a.sq); n > 0 {
				a.log.Warn("messages not sent: leaving", "count", n)
			}
			a.sq = nil
			a.smu.Unlock()
		})
		<-sent
		drain.Stop()
	}()
	for {
		select {
		case r := <-a.queue:
			var err error
			switch {
			case r.fn != nil:
				r.fn()
			case r.apply != nil:
				a.stepAll(r.apply(a.m.View()))
			default:
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

// stepAll steps inputs chosen on the loop; their errors were reported as
// Error events.
func (a *Agent) stepAll(ins []calling.Input) {
	for _, in := range ins {
		if in != nil {
			_ = a.step(in)
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
	var events []calling.Event
	effects := a.m.Step(a.clock.Now(), in)
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
			events = append(events, e.Event)
		case calling.StartTimer:
			if old := a.timers[e.Timer]; old != nil {
				old.Stop()
			}
			t := e.Timer
			a.timers[t] = a.clock.AfterFunc(e.After, func() { a.Post(calling.TimerFired{Timer: t}) })
		case calling.StopTimer:
			if old := a.timers[e.Timer]; old != nil {
				old.Stop()
				delete(a.timers, e.Timer)
			}
		case calling.Media:
			a.media.Do(e.Do)
		case calling.DoorOpen:
			a.log.Info("door opened", "by", e.By, "at", a.clock.Now().Format(time.RFC3339))
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
	if a.opts.OnEvent != nil {
		for _, ev := range events {
			a.stepAll(a.opts.OnEvent(ev))
		}
	}
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

// ErrSendQueueFull is the failure of a message dropped because the
// Transport is not keeping up.
var ErrSendQueueFull = errors.New("send queue full")

// send encodes s on the loop and queues it for the sender.
func (a *Agent) send(s calling.Send) {
	b, err := calling.Encode(s.Msg)
	if err != nil {
		a.sendFailed(s, err)
		return
	}
	a.smu.Lock()
	full := len(a.sq) >= a.opts.SendQueue
	if !full {
		a.sq = append(a.sq, outgoing{send: s, payload: b})
	}
	a.smu.Unlock()
	if full {
		a.sendFailed(s, ErrSendQueueFull)
		return
	}
	a.wakeSender()
}

// sendFailed runs on the loop: the machine's owner hears of it as an Error
// event.
func (a *Agent) sendFailed(s calling.Send, err error) {
	a.log.Warn("send failed", "to", s.To, "group", s.Group, "type", s.Msg.Type.String(), "err", err)
	a.publish(calling.Error{Err: fmt.Errorf("send %s: %w", s.Msg.Type, err)})
}

func (a *Agent) wakeSender() {
	select {
	case a.swake <- struct{}{}:
	default:
	}
}

// sender hands queued messages to the Transport in order until Run is
// leaving and the queue is empty; a failure goes back to the loop.
func (a *Agent) sender() {
	for {
		a.smu.Lock()
		if len(a.sq) == 0 {
			closed := a.sclosed
			a.smu.Unlock()
			if closed {
				return
			}
			<-a.swake
			continue
		}
		o := a.sq[0]
		a.sq = a.sq[1:]
		a.smu.Unlock()
		var err error
		if o.send.Group != "" {
			err = a.opts.Transport.SendGroup(o.send.Group, o.payload)
		} else {
			err = a.opts.Transport.Send(o.send.To, o.payload)
		}
		if err != nil {
			a.enqueue(request{fn: func() { a.sendFailed(o.send, err) }}, "send failure")
		}
	}
}

func (a *Agent) stopTimers() {
	for k, t := range a.timers {
		t.Stop()
		delete(a.timers, k)
	}
}
