package agent_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/agent/agenttest"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/clock/clocktest"
)

// limit bounds every wait of these tests in real time: a generous bound
// for a loaded machine, never a measure of speed.
const limit = 10 * time.Second

// fakeMedia records the media requests and answers them as SignalMedia
// does, so calls connect.
type fakeMedia struct {
	mu   sync.Mutex
	did  []string
	next agent.SignalMedia
}

func (m *fakeMedia) Do(e calling.MediaEffect) {
	m.mu.Lock()
	m.did = append(m.did, fmt.Sprintf("%T", e))
	m.mu.Unlock()
	m.next.Do(e)
}

type harness struct {
	a     *agent.Agent
	tr    *agenttest.Transport
	media *fakeMedia
	clock *clocktest.Clock
	ev    <-chan calling.Event
	stop  func() error
}

// start runs an agent for user "door" with a fake transport, fake media
// and the fake clock, logged in.
func start(t *testing.T, mod func(*agent.Options)) *harness {
	t.Helper()
	h := &harness{tr: &agenttest.Transport{}, media: &fakeMedia{}, clock: clocktest.New(time.Time{})}
	ids := 0
	opts := agent.Options{
		Calling: calling.Config{User: "door", Session: "s1", NewID: func() string {
			ids++
			return fmt.Sprintf("id%d", ids)
		}},
		Transport: h.tr,
		Media:     h.media,
		Clock:     h.clock,
	}
	if mod != nil {
		mod(&opts)
	}
	h.a = agent.New(opts)
	h.media.next.Post = h.a.Post
	h.ev, _ = h.a.Subscribe(256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.a.Run(ctx) }()
	var once sync.Once
	var err error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(limit):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() {
		h.tr.Release()
		if err := h.stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
	h.do(t, calling.Login{})
	return h
}

func (h *harness) do(t *testing.T, in calling.Input) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := h.a.Do(ctx, in); err != nil {
		t.Fatalf("%T: %v", in, err)
	}
}

// sync waits until the loop has handled everything queued before it.
func (h *harness) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := h.a.Tick(ctx, func() {}); err != nil {
		t.Fatalf("the loop does not answer: %v", err)
	}
}

func (h *harness) waitEvent(t *testing.T, ok func(calling.Event) bool) calling.Event {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case ev := <-h.ev:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatal("the event never came")
		}
	}
}

func (h *harness) waitSent(t *testing.T, types string) {
	t.Helper()
	if !h.tr.WaitFor(func(tr *agenttest.Transport) bool { return tr.Types() == types }, limit) {
		t.Fatalf("sent %q, want %q", h.tr.Types(), types)
	}
}

func invite(call string) calling.Received {
	return calling.Received{From: "alice", Msg: calling.Message{
		Type: calling.MsgInvite, Call: call, Invite: "i-" + call, Users: []string{"door"},
		Media: calling.Audio, TimeoutMS: 30000, Session: "alice-phone",
	}}
}

// offer is the hub's media offer that connects an accepted call.
func offer(call string) calling.Received {
	return calling.Received{From: "alice", Msg: calling.Message{Type: calling.MsgOffer, Call: call, SDP: "v=0\r\n"}}
}

// A broker that never acknowledges must not stall the loop: the loop goes
// on stepping inputs while the invitation waits, and the messages still go
// out in order once the broker answers.
func TestSendNeverAcknowledgedDoesNotStallLoop(t *testing.T) {
	h := start(t, nil)
	h.waitSent(t, "login")
	h.tr.Hold()
	h.do(t, calling.Call{Users: []string{"alice"}, Type: calling.Audio})
	if !h.tr.WaitFor(func(tr *agenttest.Transport) bool { return tr.Waiting() == 1 }, limit) {
		t.Fatal("the invitation never reached the transport")
	}
	if got := h.a.State(); got != calling.Dialing {
		t.Fatalf("state %s while the invitation is unacknowledged, want dialing", got)
	}
	for range 3 {
		h.sync(t)
	}
	h.do(t, calling.Hangup{})
	if got := h.a.State(); got != calling.Idle {
		t.Fatalf("state %s after hangup, want idle", got)
	}
	h.tr.Release()
	h.waitSent(t, "login invite cancel")
}

// A send that fails comes back to the loop and is reported as an Error
// event naming the message.
func TestSendFailureIsReported(t *testing.T) {
	h := start(t, nil)
	h.waitSent(t, "login")
	h.tr.Fail(errors.New("broker refused"))
	h.do(t, calling.Call{Users: []string{"alice"}, Type: calling.Audio})
	ev := h.waitEvent(t, func(ev calling.Event) bool { _, ok := ev.(calling.Error); return ok })
	if err := ev.(calling.Error).Err; !strings.Contains(err.Error(), "send invite") || !strings.Contains(err.Error(), "broker refused") {
		t.Fatalf("error %q, want the failed invite and the cause", err)
	}
}

// The calling timers run on the injected clock: an unanswered call ends
// when the fake time passes the invitation timeout, not before.
func TestTimersFollowTheClock(t *testing.T) {
	h := start(t, nil)
	h.do(t, calling.Call{Users: []string{"alice"}, Type: calling.Audio})
	h.clock.Advance(calling.DefaultInviteTimeout - time.Second)
	h.sync(t)
	if got := h.a.State(); got != calling.Dialing {
		t.Fatalf("state %s before the timeout, want dialing", got)
	}
	h.clock.Advance(time.Second)
	h.waitEvent(t, func(ev calling.Event) bool { _, ok := ev.(calling.NoResp); return ok })
	h.sync(t)
	if got := h.a.State(); got != calling.Idle {
		t.Fatalf("state %s after the timeout, want idle", got)
	}
	if h.clock.Pending() != 0 {
		t.Fatalf("%d timers left after the call", h.clock.Pending())
	}
}

// Apply acts on the state the loop is in when it runs, not the state at
// the time it was posted: an invitation queued before it is seen.
func TestApplySeesTheStateOfItsTurn(t *testing.T) {
	h := start(t, nil)
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = h.a.Tick(context.Background(), func() { close(held); <-hold }) }()
	<-held
	h.a.Post(invite("c1"))
	posted := h.a.State()
	seen := make(chan calling.State, 1)
	h.a.Apply(func(s calling.State) []calling.Input {
		seen <- s
		return []calling.Input{calling.Accept{}}
	})
	h.a.Post(offer("c1"))
	close(hold)
	if s := <-seen; s != calling.Ringing || posted != calling.Idle {
		t.Fatalf("Apply saw %s (state when posted: %s), want ringing (idle)", s, posted)
	}
	h.waitEvent(t, func(ev calling.Event) bool {
		sc, ok := ev.(calling.StateChanged)
		return ok && sc.To == calling.InCall
	})
}

// ApplyView sees the call as the loop has it: after an accept whose media
// is still connecting, the call is ringing but answered, and its hub known.
func TestApplyViewSeesTheAnsweredCall(t *testing.T) {
	h := start(t, nil)
	h.a.Post(invite("c1"))
	h.do(t, calling.Accept{})
	seen := make(chan calling.View, 1)
	h.a.ApplyView(func(v calling.View) []calling.Input {
		seen <- v
		return []calling.Input{calling.Hangup{}}
	})
	if v := <-seen; v != (calling.View{State: calling.Ringing, Call: "c1", Hub: "alice", Answered: true}) {
		t.Fatalf("ApplyView saw %+v", v)
	}
	h.waitEvent(t, func(ev calling.Event) bool {
		sc, ok := ev.(calling.StateChanged)
		return ok && sc.To == calling.Idle
	})
}

// Inputs returned by OnEvent are stepped at once, on the loop, before any
// input queued after the event: an auto-answer cannot be overtaken.
func TestOnEventInputsStepFirst(t *testing.T) {
	h := start(t, func(o *agent.Options) {
		o.OnEvent = func(ev calling.Event) []calling.Input {
			if _, ok := ev.(calling.Invited); ok {
				return []calling.Input{calling.Accept{}}
			}
			return nil
		}
	})
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = h.a.Tick(context.Background(), func() { close(held); <-hold }) }()
	<-held
	h.a.Post(invite("c1"))
	next := make(chan string, 1)
	h.a.Apply(func(calling.State) []calling.Input {
		h.media.mu.Lock()
		defer h.media.mu.Unlock()
		next <- strings.Join(h.media.did, " ")
		return nil
	})
	h.a.Post(offer("c1"))
	close(hold)
	if got := <-next; !strings.Contains(got, "calling.JoinMedia") {
		t.Fatalf("media requests before the next input: %q, want the auto-answer's JoinMedia", got)
	}
	h.waitSent(t, "login accept accept answer")
	h.sync(t)
	if got := h.a.State(); got != calling.InCall {
		t.Fatalf("state %s, want in_call", got)
	}
}

// Leaving with a call up hangs it up and the goodbye still goes out before
// Run returns; with a broker that never acknowledges, Run returns anyway
// once the drain time has passed on the clock.
func TestRunHangsUpAndDrains(t *testing.T) {
	h := start(t, nil)
	h.a.Post(invite("c1"))
	h.do(t, calling.Accept{})
	h.do(t, offer("c1"))
	if h.a.State() != calling.InCall {
		t.Fatalf("state %s, want in_call", h.a.State())
	}
	h.waitSent(t, "login accept accept answer")
	if err := h.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if got := h.tr.Types(); !strings.HasPrefix(got, "login accept accept answer leave") {
		t.Fatalf("sent %q, want the leave before Run returned", got)
	}

	h2 := start(t, nil)
	h2.a.Post(invite("c2"))
	h2.do(t, calling.Accept{})
	h2.do(t, offer("c2"))
	h2.waitSent(t, "login accept accept answer")
	if n := h2.clock.Pending(); n != 0 {
		t.Fatalf("%d timers armed in the call; the test counts on none", n)
	}
	h2.tr.Hold()
	stopped := make(chan error, 1)
	go func() { stopped <- h2.stop() }()
	if !h2.clock.WaitFor(1, limit) {
		t.Fatal("Run never armed its drain timer")
	}
	h2.clock.Advance(2 * time.Second) // the rest of the queue is dropped
	h2.tr.Release()                   // the send in flight gives up, as mqttsig's does
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if got := h2.tr.Types(); got != "login accept accept answer" && got != "login accept accept answer leave" {
		t.Fatalf("sent %q after the drain time, want at most the message in flight", got)
	}
}

// Run joins its sender: no goroutine outlives it.
func TestRunLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	h := start(t, nil)
	h.do(t, calling.Call{Users: []string{"alice"}, Type: calling.Audio})
	h.waitSent(t, "login invite")
	if err := h.stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(limit); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Run, %d before", runtime.NumGoroutine(), before)
		}
	}
}
