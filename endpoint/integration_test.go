package endpoint_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// The signaling integration suite: real clients over real sockets, through
// the embedded broker and through a real Mosquitto, with the signaling-only
// media stand-in (package media tests the same flows with real media).

var users = []string{"door", "alice", "bob", "carol", "dave"}

var groups = map[string][]string{"residents": {"door", "alice", "bob", "carol"}}

// brokers runs f against each broker kind.
func brokers(t *testing.T, f func(t *testing.T, env *mqtttest.Env)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		f(t, mqtttest.StartEmbedded(t, mqtttest.Options{Groups: groups}))
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		pw := map[string]string{}
		for _, u := range users {
			pw[u] = "pw-" + u
		}
		f(t, mqtttest.StartMosquitto(t, pw, groups))
	})
}

// phone is one logged-in endpoint with a log of its events.
type phone struct {
	*endpoint.Endpoint
	t      *testing.T
	mu     sync.Mutex
	events []string
	notify chan struct{}
	link   atomic.Int32 // the last OnLink: linkUp or linkDown, 0 before any
	downs  atomic.Int32 // OnLink(false) calls
}

const (
	linkUp int32 = iota + 1
	linkDown
)

type phoneOpt func(*endpoint.Options)

func withTimeout(d time.Duration) phoneOpt {
	return func(o *endpoint.Options) { o.Calling.InviteTimeout = d }
}

func withSession(s string) phoneOpt { return func(o *endpoint.Options) { o.Calling.Session = s } }

func multiDevice(o *endpoint.Options) { o.Calling.MultiDevice = true }

func newPhone(t *testing.T, env *mqtttest.Env, user string, opts ...phoneOpt) *phone {
	t.Helper()
	o := endpoint.Options{
		MQTT:    env.ClientOptions(user),
		Calling: calling.Config{User: user, InviteTimeout: 5 * time.Second, DoorUsers: []string{"alice"}},
		Logger:  env.Logger().With("phone", user),
	}
	for _, f := range opts {
		f(&o)
	}
	p := &phone{t: t, notify: make(chan struct{}, 1)}
	o.OnLink = func(up bool) {
		if up {
			p.link.Store(linkUp)
		} else {
			p.link.Store(linkDown)
			p.downs.Add(1)
		}
	}
	ctx := t.Context()
	ep, err := endpoint.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	p.Endpoint = ep
	events, unsubscribe := ep.Subscribe(1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				p.mu.Lock()
				p.events = append(p.events, calling.DescribeEvent(ev))
				p.mu.Unlock()
				select {
				case p.notify <- struct{}{}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Close(cctx)
		unsubscribe()
		<-done
	})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := ep.WaitReady(wctx); err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	return p
}

// waitFor waits until cond holds, checking after every event.
func (p *phone) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	for {
		if cond() {
			return true
		}
		select {
		case <-p.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return cond()
		}
	}
}

// expect waits for an event line starting with prefix.
func (p *phone) expect(prefix string, d time.Duration) {
	p.t.Helper()
	if !p.waitFor(d, func() bool { return p.saw(prefix) }) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("%s never saw %q within %s; saw %q", p.User(), prefix, d, p.events)
	}
}

func (p *phone) saw(prefix string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.ContainsFunc(p.events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

// online waits until p has seen each user's presence online.
func (p *phone) online(users ...string) {
	p.t.Helper()
	if !p.waitFor(settle, func() bool {
		on := p.Online()
		for _, u := range users {
			if !slices.Contains(on, u) {
				return false
			}
		}
		return true
	}) {
		p.t.Fatalf("%s sees online %v, want %v", p.User(), p.Online(), users)
	}
}

func (p *phone) state(s calling.State, d time.Duration) {
	p.t.Helper()
	if !p.waitFor(d, func() bool { return p.State() == s }) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("%s is %s, want %s after %s; events %q", p.User(), p.State(), s, d, p.events)
	}
}

func (p *phone) do(in calling.Input) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), 10*time.Second)
	defer cancel()
	if err := p.Do(ctx, in); err != nil {
		p.t.Fatalf("%s: %T: %v", p.User(), in, err)
	}
}

const settle = 10 * time.Second

func TestOneToOne(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a, b := newPhone(t, env, "alice"), newPhone(t, env, "bob")
		for _, hangupBy := range []*phone{a, b} {
			a.do(calling.Call{Users: []string{"bob"}, Type: calling.Video})
			b.state(calling.Ringing, settle)
			b.expect("Invited sponsor=alice users=bob", settle)
			b.do(calling.Accept{})
			a.state(calling.InCall, settle)
			b.state(calling.InCall, settle)
			a.expect("UserEnter bob", settle)
			b.expect("UserEnter alice", settle)
			hangupBy.do(calling.Hangup{})
			a.state(calling.Idle, settle)
			b.state(calling.Idle, settle)
		}
		a.expect("UserLeave bob", settle)
		b.expect("UserLeave alice", settle)
	})
}

func TestRejectBusyCancel(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a, b, c := newPhone(t, env, "alice"), newPhone(t, env, "bob"), newPhone(t, env, "carol")
		// Reject.
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		b.state(calling.Ringing, settle)
		b.do(calling.Reject{})
		a.expect("Reject bob", settle)
		a.state(calling.Idle, settle)
		// Busy: bob rings for alice; carol's call gets an automatic busy.
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		b.state(calling.Ringing, settle)
		c.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		c.expect("LineBusy bob", settle)
		c.state(calling.Idle, settle)
		if b.State() != calling.Ringing {
			t.Fatalf("the busy reply changed bob's state to %s", b.State())
		}
		// Cancel: alice hangs up while bob rings.
		a.do(calling.Hangup{})
		b.expect("CallingCancel sponsor=alice", settle)
		b.state(calling.Idle, settle)
		// Line busy on purpose.
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		b.state(calling.Ringing, settle)
		b.do(calling.LineBusy{})
		a.expect("LineBusy bob", settle)
		a.state(calling.Idle, settle)
	})
}

func TestNoAnswerAndCalleeTimeout(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a, b := newPhone(t, env, "alice"), newPhone(t, env, "bob")
		start := time.Now()
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Video})
		b.state(calling.Ringing, settle)
		a.expect("NoResp bob", 5*time.Second+settle)
		b.expect("CallingTimeout", settle)
		if el := time.Since(start); el < 5*time.Second {
			t.Fatalf("timed out after %s, before the 5 s invite timeout", el)
		}
		a.state(calling.Idle, settle)
		b.state(calling.Idle, settle)
	})
}

func TestOfflineInvitee(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a := newPhone(t, env, "alice")
		// dave never signed in: no presence at all; the invitation times out.
		a.do(calling.Call{Users: []string{"dave"}, Type: calling.Audio})
		a.expect("NoResp dave", 5*time.Second+settle)
		a.state(calling.Idle, settle)
		// bob signs in and leaves: his last presence says offline, so the
		// answer is immediate.
		b := newPhone(t, env, "bob")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_ = b.Close(ctx)
		cancel()
		if !a.waitFor(settle, func() bool { return !slices.Contains(a.Online(), "bob") }) {
			t.Fatalf("alice still sees bob online: %v", a.Online())
		}
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		a.expect("NoResp bob", time.Second)
		a.state(calling.Idle, settle)
	})
}

// An empty retained presence is a cleared one: the user is offline (§5),
// not a payload to complain about, and is not invited.
func TestEmptyPresenceIsOffline(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a := newPhone(t, env, "alice")
		raw, err := env.RawConnect(env.RawOptions("dave", env.Password("dave"), "dave.raw"))
		if err != nil {
			t.Fatal(err)
		}
		publish := func(payload string) {
			t.Helper()
			tok := raw.Publish(env.Layout.Presence("dave"), 1, true, payload)
			if !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
				t.Fatalf("publish presence %q: %v", payload, tok.Error())
			}
		}
		publish(`{"v":1,"state":"online","session":"raw","versions":[1]}`)
		a.online("dave")
		publish("")
		if !a.waitFor(settle, func() bool { return !slices.Contains(a.Online(), "dave") }) {
			t.Fatalf("alice still sees dave online after his presence was cleared: %v", a.Online())
		}
		a.do(calling.Call{Users: []string{"dave"}, Type: calling.Audio})
		a.expect("NoResp dave", time.Second)
		a.state(calling.Idle, settle)
	})
}

// A ring sent while the callee's phone was away (its connection dropped
// and its presence still said online, as after a broker restart) is lost;
// when the phone comes back while the call still rings, its online presence
// makes the caller send the invitation again.
func TestRingReachesPhoneThatComesBack(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a := newPhone(t, env, "alice", withTimeout(30*time.Second))
		// bob's last connection said online and is gone, without a will.
		raw, err := env.RawConnect(env.RawOptions("bob", env.Password("bob"), "bob.away"))
		if err != nil {
			t.Fatal(err)
		}
		tok := raw.Publish(env.Layout.Presence("bob"), 1, true, `{"v":1,"state":"online","session":"away","versions":[1]}`)
		if !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
			t.Fatalf("publish presence: %v", tok.Error())
		}
		raw.Disconnect(250)
		a.online("bob")
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio}) // nobody receives it
		back := newPhone(t, env, "bob", withSession("back"))
		back.state(calling.Ringing, settle)
		back.expect("Invited sponsor=alice users=bob", settle)
		back.do(calling.Accept{})
		a.state(calling.InCall, settle)
		back.state(calling.InCall, settle)
	})
}

func TestGroupCall(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		for _, group := range []string{"residents", ""} {
			t.Run(fmt.Sprintf("group=%q", group), func(t *testing.T) {
				d := newPhone(t, env, "door", withTimeout(5*time.Second))
				a, b, c := newPhone(t, env, "alice"), newPhone(t, env, "bob"), newPhone(t, env, "carol")
				// The previous subtest's phones left offline presence behind:
				// a user known offline is answered NoResp at once, so wait
				// until the door has seen the new logins.
				d.online("alice", "bob", "carol")
				d.do(calling.Call{Users: []string{"alice", "bob", "carol"}, Type: calling.Video, Group: group})
				for _, p := range []*phone{a, b, c} {
					p.state(calling.Ringing, settle)
					p.expect("Invited sponsor=door users=alice,bob,carol", settle)
				}
				a.do(calling.Accept{})
				b.do(calling.Reject{})
				d.expect("UserEnter alice", settle)
				d.expect("Reject bob", settle)
				a.expect("Reject bob", settle) // relayed by the hub
				d.expect("NoResp carol", 5*time.Second+settle)
				c.state(calling.Idle, settle)
				a.expect("NoResp carol", settle)
				if d.State() != calling.InCall || a.State() != calling.InCall {
					t.Fatalf("door %s, alice %s", d.State(), a.State())
				}
				a.do(calling.Hangup{})
				d.state(calling.Idle, settle)
				d.expect("CallEnd reason=hangup", settle)
			})
		}
	})
}

func TestSameUserTwiceKicksTheFirst(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a := newPhone(t, env, "alice")
		first := newPhone(t, env, "bob", withSession("first"))
		second := newPhone(t, env, "bob", withSession("second"))
		select {
		case <-first.Kicked():
		case <-time.After(settle):
			t.Fatal("the first login was not kicked")
		}
		first.expect("KickedOffline", settle)
		// The kicked login's link is down for good, and says so (the
		// daemon's intercomd_signaling_connected and LEDs follow OnLink).
		if !first.waitFor(settle, func() bool { return first.link.Load() == linkDown }) {
			t.Fatalf("the kicked login's link still reports %d", first.link.Load())
		}
		// The kicked login leaves without saying offline: bob is online
		// (on his second login), for alice and for anyone who subscribes later.
		time.Sleep(300 * time.Millisecond)
		late := newPhone(t, env, "carol")
		for _, p := range []*phone{a, late} {
			if !p.waitFor(settle, func() bool { return slices.Contains(p.Online(), "bob") }) {
				t.Fatalf("%s sees bob offline after the kick: %v", p.User(), p.Online())
			}
		}
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		second.state(calling.Ringing, settle)
		if first.State() != calling.Idle {
			t.Fatalf("the kicked login rings: %s", first.State())
		}
	})
}

// A signaling client closed under the endpoint (not through Close) is a
// link down for good: reported once, and the agent stays responsive rather
// than flooded with link changes.
func TestClientClosedUnderneath(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a := newPhone(t, env, "alice")
		ctx, cancel := context.WithTimeout(t.Context(), settle)
		defer cancel()
		if err := a.Client().Close(ctx); err != nil {
			t.Fatal(err)
		}
		if !a.waitFor(settle, func() bool { return a.link.Load() == linkDown }) {
			t.Fatalf("link still reports %d after the client closed", a.link.Load())
		}
		for range 100 {
			if err := a.Do(ctx, calling.Configure{}); err != nil {
				t.Fatalf("the agent does not answer after the client closed: %v", err)
			}
		}
		if n := a.downs.Load(); n != 1 {
			t.Fatalf("link down reported %d times, want once", n)
		}
	})
}

func TestMultiDeviceOtherAnswers(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		d := newPhone(t, env, "door")
		p1 := newPhone(t, env, "alice", withSession("phone1"), multiDevice)
		p2 := newPhone(t, env, "alice", withSession("phone2"), multiDevice)
		d.do(calling.Call{Users: []string{"alice"}, Type: calling.Video})
		p1.state(calling.Ringing, settle)
		p2.state(calling.Ringing, settle)
		p2.do(calling.Accept{})
		p1.expect("CallingCancel sponsor=door reason=elsewhere", settle)
		p1.state(calling.Idle, settle)
		d.state(calling.InCall, settle)
		p2.state(calling.InCall, settle)
	})
}

// The broker restarts while bob rings: both sides end idle (the caller's
// timer, the callee's safety timer) and reconnect afterwards.
func TestBrokerRestartWhileRinging(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a, b := newPhone(t, env, "alice"), newPhone(t, env, "bob")
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		b.state(calling.Ringing, settle)
		env.Restart()
		a.state(calling.Idle, 5*time.Second+settle)
		b.state(calling.Idle, 5*time.Second+calling.RingGrace+settle)
		for _, p := range []*phone{a, b} {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			if err := p.Client().WaitConnected(ctx); err != nil {
				t.Fatalf("%s did not reconnect: %v", p.User(), err)
			}
			cancel()
		}
		// And calls work again.
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		b.state(calling.Ringing, settle)
		b.do(calling.Accept{})
		a.state(calling.InCall, settle)
	})
}

// Malformed, oversized and unknown-version messages are dropped without
// disturbing a call in progress.
func TestBadMessagesDuringACall(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		a, b := newPhone(t, env, "alice"), newPhone(t, env, "bob")
		a.do(calling.Call{Users: []string{"bob"}, Type: calling.Video})
		b.state(calling.Ringing, settle)
		b.do(calling.Accept{})
		a.state(calling.InCall, settle)
		m := newPhone(t, env, "carol")
		for _, payload := range [][]byte{
			[]byte("not json"),
			[]byte(`{"v":9,"type":"leave","call":"` + a.CallID() + `"}`),
			[]byte(`{"v":1,"type":"leave"}`),
			[]byte(`{"v":1,"type":"nonsense","call":"x"}`),
			[]byte(`{"v":1,"type":"leave","call":"` + a.CallID() + `"}`), // carol is no party of the call
		} {
			if err := m.Client().Send("alice", payload); err != nil {
				t.Fatal(err)
			}
			if err := m.Client().Send("bob", payload); err != nil {
				t.Fatal(err)
			}
		}
		// An oversized one is refused by the sender's client already.
		big := make([]byte, 70<<10)
		if err := m.Client().Send("alice", big); err == nil {
			t.Error("a 70 KiB payload was sent")
		}
		time.Sleep(500 * time.Millisecond) // let them arrive; nothing must change
		if a.State() != calling.InCall || b.State() != calling.InCall {
			t.Fatalf("bad messages disturbed the call: alice %s, bob %s", a.State(), b.State())
		}
		if !strings.Contains(env.Logs.String(), "message dropped") {
			t.Errorf("bad messages were not logged:\n%s", env.Logs.String())
		}
		a.do(calling.Hangup{})
		b.state(calling.Idle, settle)
	})
}

// BenchmarkInviteToRinging measures, on loopback, the time from placing a
// call to the callee ringing, over real brokers; it reports p50 and p95.
// Run: go test -run '^$' -bench InviteToRinging -benchtime 200x ./endpoint/
func BenchmarkInviteToRinging(b *testing.B) {
	for _, kind := range []string{mqtttest.Embedded, mqtttest.Mosquitto} {
		b.Run(kind, func(b *testing.B) {
			var env *mqtttest.Env
			if kind == mqtttest.Embedded {
				env = mqtttest.StartEmbedded(b, mqtttest.Options{Groups: groups})
			} else {
				pw := map[string]string{"alice": "pw-alice", "bob": "pw-bob"}
				env = mqtttest.StartMosquitto(b, pw, groups)
			}
			a, c := benchPhone(b, env, "alice"), benchPhone(b, env, "bob")
			ringing := make(chan time.Time, 1)
			events, unsubscribe := c.Subscribe(1024)
			defer unsubscribe()
			go func() {
				for ev := range events {
					if sc, ok := ev.(calling.StateChanged); ok && sc.To == calling.Ringing {
						ringing <- time.Now()
					}
				}
			}()
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := a.Do(ctx, calling.Call{Users: []string{"bob"}, Type: calling.Audio}); err != nil {
					b.Fatal(err)
				}
				select {
				case at := <-ringing:
					lat = append(lat, at.Sub(start))
				case <-time.After(5 * time.Second):
					b.Fatal("bob never rang")
				}
				if err := a.Do(ctx, calling.Hangup{}); err != nil {
					b.Fatal(err)
				}
				for c.State() != calling.Idle {
					time.Sleep(100 * time.Microsecond)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

func benchPhone(b *testing.B, env *mqtttest.Env, user string) *endpoint.Endpoint {
	b.Helper()
	ep, err := endpoint.Start(context.Background(), endpoint.Options{
		MQTT:    env.ClientOptions(user),
		Calling: calling.Config{User: user},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ep.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return ep
}
