package mqttsig_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/mqttsig"
)

var (
	testUsers  = map[string]string{"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "mallory": "pw-mallory"}
	testGroups = map[string][]string{"family": {"alice", "bob"}, "staff": {"carol"}}
)

// brokers runs f against the embedded broker and against Mosquitto.
func brokers(t *testing.T, f func(t *testing.T, env *mqtttest.Env)) {
	t.Run("embedded", func(t *testing.T) {
		leaktest.Check(t)
		f(t, mqtttest.StartEmbedded(t, mqtttest.Options{Groups: testGroups}))
	})
	t.Run("mosquitto", func(t *testing.T) {
		leaktest.Check(t)
		f(t, mqtttest.StartMosquitto(t, testUsers, testGroups))
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next inbound message that is not a presence update.
func next(ctx context.Context, t *testing.T, c *mqttsig.Client) mqttsig.Inbound {
	t.Helper()
	return receive(ctx, t, c, "message", func(in mqttsig.Inbound) bool { return in.Kind != mqttsig.Presence })
}

// receive returns the next inbound message for which want is true,
// skipping others; it fails t when the channel closes or ctx ends.
func receive(ctx context.Context, t *testing.T, c *mqttsig.Client, what string, want func(mqttsig.Inbound) bool) mqttsig.Inbound {
	t.Helper()
	for {
		select {
		case in, ok := <-c.Inbound():
			if !ok {
				t.Fatalf("%s: inbound channel closed", c.User())
			}
			if want(in) {
				return in
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %s: %v", c.User(), what, ctx.Err())
		}
	}
}

// waitPresence returns the next presence update about user in the given
// state (and retained, if retained is set), skipping others: a broker may
// deliver a presence twice, retained and live, when a subscription races
// with its publication.
func waitPresence(ctx context.Context, t *testing.T, c *mqttsig.Client, user, state string, retained bool) (mqttsig.Inbound, mqttsig.PresenceInfo) {
	t.Helper()
	var p mqttsig.PresenceInfo
	in := receive(ctx, t, c, fmt.Sprintf("%s presence of %s (retained %v)", state, user, retained), func(in mqttsig.Inbound) bool {
		if in.Kind != mqttsig.Presence || in.From != user {
			return false
		}
		var err error
		p, err = mqttsig.ParsePresence(in.Payload)
		if err != nil {
			t.Fatalf("presence of %s: %v (payload %q)", user, err, in.Payload)
		}
		return p.State == state && (in.Retained || !retained)
	})
	return in, p
}

// receiveUntil collects non-presence messages until one carries marker.
func receiveUntil(ctx context.Context, t *testing.T, c *mqttsig.Client, marker string) []mqttsig.Inbound {
	t.Helper()
	var got []mqttsig.Inbound
	for {
		in := next(ctx, t, c)
		if string(in.Payload) == marker {
			return got
		}
		got = append(got, in)
	}
}

func TestDirectMessage(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob := env.Client("alice"), env.Client("bob")
		if err := alice.Send("bob", []byte("hello bob")); err != nil {
			t.Fatal(err)
		}
		in := next(ctx, t, bob)
		if in.Kind != mqttsig.Direct || in.From != "alice" || string(in.Payload) != "hello bob" {
			t.Fatalf("bob got %+v", in)
		}
		if err := bob.Send("alice", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, alice); in.From != "bob" || string(in.Payload) != "hi" {
			t.Fatalf("alice got %+v", in)
		}
	})
}

func TestOrderPreserved(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob := env.Client("alice"), env.Client("bob")
		const n = 200
		for i := range n {
			if err := alice.Send("bob", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if in := next(ctx, t, bob); string(in.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d: got %q", i, in.Payload)
			}
		}
	})
}

func TestCannotReadAnotherInbox(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob := env.Client("alice"), env.Client("bob")
		mallory, err := env.RawConnect(env.RawOptions("mallory", env.Password("mallory"), "mallory.raw"))
		if err != nil {
			t.Fatal(err)
		}
		stolen := make(chan string, 16)
		own := make(chan string, 16)
		p := env.Layout.Prefix() + "/v1/"
		for _, filter := range []string{p + "inbox/bob/+", p + "inbox/bob/#", p + "inbox/+/+", p + "inbox/#", "#", p + "#"} {
			tok := mallory.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
				if !strings.HasPrefix(m.Topic(), p+"inbox/mallory/") && !strings.HasPrefix(m.Topic(), p+"presence/") {
					stolen <- m.Topic()
				}
			})
			if !tok.WaitTimeout(mqtttest.Timeout) {
				t.Fatalf("subscribe %s: no answer", filter)
			}
			if st := tok.(*paho.SubscribeToken); tok.Error() == nil {
				t.Logf("%s broker: subscribe %q by mallory answered %v", env.Kind, filter, st.Result())
			}
		}
		tok := mallory.Subscribe(p+"inbox/mallory/+", 1, func(_ paho.Client, m paho.Message) { own <- string(m.Payload()) })
		if !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
			t.Fatalf("mallory cannot subscribe to her own inbox: %v", tok.Error())
		}

		if err := alice.Send("bob", []byte("for bob only")); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, bob); string(in.Payload) != "for bob only" {
			t.Fatalf("bob got %q", in.Payload)
		}
		// alice's later message to mallory arrives after anything mallory
		// could have received of the first one.
		if err := alice.Send("mallory", []byte("marker")); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-own:
			if m != "marker" {
				t.Fatalf("mallory got %q", m)
			}
		case <-ctx.Done():
			t.Fatal("mallory did not receive her own message")
		}
		select {
		case topic := <-stolen:
			t.Fatalf("%s broker delivered %s to mallory", env.Kind, topic)
		default:
		}
	})
}

func TestCannotPublishAsSomeoneElse(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		bob, carol := env.Client("bob"), env.Client("carol")
		lost := make(chan struct{})
		o := env.RawOptions("alice", env.Password("alice"), "alice.raw")
		o.SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
		alice, err := env.RawConnect(o)
		if err != nil {
			t.Fatal(err)
		}
		forged := []string{
			env.Layout.Inbox("bob", "mallory"),
			env.Layout.Inbox("bob", "carol"),
			env.Layout.Presence("bob"),
			env.Layout.Group("family", "bob"),
		}
		for _, topic := range forged {
			tok := alice.Publish(topic, 1, false, []byte("forged"))
			// Mosquitto acknowledges and drops; the embedded broker
			// disconnects the client. Either way the broker is done with it.
			select {
			case <-tok.Done():
			case <-lost:
			case <-ctx.Done():
				t.Fatalf("publish to %s: no outcome", topic)
			}
		}
		if err := carol.Send("bob", []byte("marker")); err != nil {
			t.Fatal(err)
		}
		got := receiveUntil(ctx, t, bob, "marker")
		if len(got) != 0 {
			t.Fatalf("%s broker delivered forged messages to bob: %+v", env.Kind, got)
		}
	})
}

func TestGroup(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob, carol := env.Client("alice"), env.Client("bob"), env.Client("carol")
		if err := alice.SendGroup("family", []byte("dinner")); err != nil {
			t.Fatal(err)
		}
		in := next(ctx, t, bob)
		if in.Kind != mqttsig.Group || in.Group != "family" || in.From != "alice" || string(in.Payload) != "dinner" {
			t.Fatalf("bob got %+v", in)
		}
		if err := carol.SendGroup("family", []byte("x")); !errors.Is(err, mqttsig.ErrNotMember) {
			t.Fatalf("carol SendGroup family: %v, want ErrNotMember", err)
		}

		// carol, not a member, tries by hand.
		raw, err := env.RawConnect(env.RawOptions("carol", env.Password("carol"), "carol.raw"))
		if err != nil {
			t.Fatal(err)
		}
		stolen := make(chan string, 4)
		tok := raw.Subscribe(env.Layout.GroupFilter("family"), 1, func(_ paho.Client, m paho.Message) { stolen <- string(m.Payload()) })
		if !tok.WaitTimeout(mqtttest.Timeout) {
			t.Fatal("subscribe: no answer")
		}
		if tok.Error() == nil {
			t.Logf("%s broker: carol's group subscription answered %v", env.Kind, tok.(*paho.SubscribeToken).Result())
		}
		pub := raw.Publish(env.Layout.Group("family", "carol"), 1, false, []byte("intruder"))
		select {
		case <-pub.Done():
		case <-time.After(5 * time.Second):
			// The embedded broker drops the connection; the token may
			// never complete. The marker below still orders the outcome.
		}
		if err := alice.SendGroup("family", []byte("second")); err != nil {
			t.Fatal(err)
		}
		if err := alice.Send("bob", []byte("marker")); err != nil {
			t.Fatal(err)
		}
		got := receiveUntil(ctx, t, bob, "marker")
		if len(got) != 1 || string(got[0].Payload) != "second" {
			t.Fatalf("bob got %+v, want only alice's second broadcast", got)
		}
		// alice does not hear her own broadcasts.
		if err := bob.Send("alice", []byte("marker")); err != nil {
			t.Fatal(err)
		}
		if got := receiveUntil(ctx, t, alice, "marker"); len(got) != 0 {
			t.Fatalf("alice got %+v", got)
		}
		select {
		case m := <-stolen:
			t.Fatalf("%s broker delivered group broadcast %q to a non-member", env.Kind, m)
		default:
		}
		if n := len(carol.Inbound()); n > 0 {
			for range n {
				if in := <-carol.Inbound(); in.Kind == mqttsig.Group {
					t.Fatalf("carol received %+v", in)
				}
			}
		}
	})
}

func TestPresence(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		proxy := mqtttest.NewProxy(t, env.URL())
		alice := env.Client("alice", func(o *mqttsig.Options) {
			o.Brokers = []string{proxy.URL()}
			o.Session = "s1"
		})

		// Retained online, seen by a client that connects later.
		bob := env.Client("bob")
		_, p := waitPresence(ctx, t, bob, "alice", mqttsig.PresenceOnline, true)
		if p.Session != "s1" || !slices.Equal(p.Versions, []int{1}) {
			t.Fatalf("bob saw %+v, want online of session s1 speaking version 1", p)
		}

		// The connection dies under alice: the broker publishes her will.
		proxy.Pause()
		in, p := waitPresence(ctx, t, bob, "alice", mqttsig.PresenceOffline, false)
		if in.Retained || p.Session != "s1" {
			t.Fatalf("after cut bob saw %+v %+v, want live offline of session s1", in, p)
		}
		// The will was retained: a newcomer sees alice offline.
		carol := env.Client("carol")
		waitPresence(ctx, t, carol, "alice", mqttsig.PresenceOffline, true)

		// alice comes back on her own.
		proxy.Resume()
		waitPresence(ctx, t, bob, "alice", mqttsig.PresenceOnline, false)
		if err := alice.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}

		// A clean Close says offline before leaving.
		if err := alice.Close(ctx); err != nil {
			t.Fatal(err)
		}
		waitPresence(ctx, t, bob, "alice", mqttsig.PresenceOffline, false)
		if _, ok := <-alice.Inbound(); ok {
			// Drain whatever was buffered; the channel must end closed.
			for range alice.Inbound() {
			}
		}
		if _, ok := <-alice.Status(); ok {
			for range alice.Status() {
			}
		}
		if err := alice.Send("bob", []byte("x")); !errors.Is(err, mqttsig.ErrClosed) {
			t.Fatalf("Send after Close: %v", err)
		}
	})
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob := env.Client("alice"), env.Client("bob")
		env.Stop()
		for _, c := range []*mqttsig.Client{alice, bob} {
			waitStatus(ctx, t, c, false)
		}
		if err := alice.Send("bob", []byte("lost")); !errors.Is(err, mqttsig.ErrNotConnected) {
			t.Fatalf("Send while the broker is down: %v, want ErrNotConnected", err)
		}
		env.Start()
		for _, c := range []*mqttsig.Client{alice, bob} {
			waitStatus(ctx, t, c, true)
		}
		if err := alice.Send("bob", []byte("after restart")); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, bob); in.From != "alice" || string(in.Payload) != "after restart" {
			t.Fatalf("bob got %+v", in)
		}
		// Presence was republished to the fresh broker.
		carol := env.Client("carol")
		waitPresence(ctx, t, carol, "bob", mqttsig.PresenceOnline, true)
	})
}

func waitStatus(ctx context.Context, t *testing.T, c *mqttsig.Client, want bool) {
	t.Helper()
	for {
		select {
		case up, ok := <-c.Status():
			if !ok {
				t.Fatalf("%s: status channel closed", c.User())
			}
			if up == want {
				if up != c.Connected() {
					t.Fatalf("%s: Status said %v, Connected() says %v", c.User(), up, !up)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s: link never became %v", c.User(), want)
		}
	}
}

func TestOversizedPayload(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice, bob := env.Client("alice"), env.Client("bob")
		if err := alice.Send("bob", make([]byte, mqttsig.MaxPayload+1)); !errors.Is(err, mqttsig.ErrTooLarge) {
			t.Fatalf("Send of 64 KiB + 1: %v, want ErrTooLarge", err)
		}
		raw, err := env.RawConnect(env.RawOptions("alice", env.Password("alice"), "alice.raw"))
		if err != nil {
			t.Fatal(err)
		}
		tok := raw.Publish(env.Layout.Inbox("bob", "alice"), 1, false, bytes.Repeat([]byte("x"), mqttsig.MaxPayload+1))
		if !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
			t.Fatalf("raw oversized publish: %v", tok.Error())
		}
		if err := env.Logs.WaitFor(ctx, "oversized message dropped", "client=bob", "from=alice"); err != nil {
			t.Fatal(err)
		}
		max := bytes.Repeat([]byte("y"), mqttsig.MaxPayload)
		if err := alice.Send("bob", max); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, bob); !bytes.Equal(in.Payload, max) {
			t.Fatalf("bob got %d bytes, want the 64 KiB message", len(in.Payload))
		}
	})
}

func TestStuckConsumerDropsInsteadOfBlocking(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice := env.Client("alice")
		bob := env.Client("bob", func(o *mqttsig.Options) { o.InboundBuffer = 4 })
		// Fill bob's queue with presence and messages he does not read.
		for i := range 50 {
			if err := alice.Send("bob", []byte(fmt.Sprint(i))); err != nil {
				t.Fatalf("send %d while bob is stuck: %v", i, err)
			}
		}
		if err := env.Logs.WaitFor(ctx, "inbound queue full", "client=bob"); err != nil {
			t.Fatal(err)
		}
		// bob wakes up: his link survived and new messages flow again. The
		// tail of the backlog may still be arriving and fill his small queue
		// again, so alice repeats until one gets through.
		if !bob.Connected() {
			t.Fatal("bob's link went down")
		}
		for i := 0; ; i++ {
			fresh := fmt.Sprint("fresh-", i)
			if err := alice.Send("bob", []byte(fresh)); err != nil {
				t.Fatal(err)
			}
			if drainUntil(ctx, t, bob, fresh, time.Second) {
				return
			}
		}
	})
}

// drainUntil reads c's messages until one carries payload (true) or wait
// passes without it (false).
func drainUntil(ctx context.Context, t *testing.T, c *mqttsig.Client, payload string, wait time.Duration) bool {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case in := <-c.Inbound():
			if string(in.Payload) == payload {
				return true
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			t.Fatalf("%s never received %q: %v", c.User(), payload, ctx.Err())
		}
	}
}

func TestWebSocket(t *testing.T) {
	brokers(t, func(t *testing.T, env *mqtttest.Env) {
		ctx := testCtx(t)
		alice := env.Client("alice")
		bob := env.Client("bob", func(o *mqttsig.Options) { o.Brokers = []string{env.WSURL()} })
		if err := alice.Send("bob", []byte("over websocket")); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, bob); in.From != "alice" || string(in.Payload) != "over websocket" {
			t.Fatalf("bob got %+v", in)
		}
		big := bytes.Repeat([]byte("w"), mqttsig.MaxPayload)
		if err := bob.Send("alice", big); err != nil {
			t.Fatal(err)
		}
		if in := next(ctx, t, alice); in.From != "bob" || !bytes.Equal(in.Payload, big) {
			t.Fatalf("alice got %d bytes from %s", len(in.Payload), in.From)
		}
	})
}

func TestDialValidation(t *testing.T) {
	ctx := context.Background()
	base := mqttsig.Options{Brokers: []string{"tcp://127.0.0.1:1"}, User: "alice"}
	for name, edit := range map[string]func(*mqttsig.Options){
		"bad user":    func(o *mqttsig.Options) { o.User = "a/b" },
		"bad group":   func(o *mqttsig.Options) { o.Groups = []string{"#"} },
		"bad session": func(o *mqttsig.Options) { o.Session = "x y" },
		"no broker":   func(o *mqttsig.Options) { o.Brokers = nil },
		"bad prefix":  func(o *mqttsig.Options) { o.Prefix = "a/+" },
		"bad ca file": func(o *mqttsig.Options) { o.CAFile = "/nonexistent" },
	} {
		o := base
		edit(&o)
		if c, err := mqttsig.Dial(ctx, o); err == nil {
			_ = c.Close(ctx)
			t.Errorf("%s: Dial accepted", name)
		}
	}
}

func TestSendWhileNeverConnected(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	c, err := mqttsig.Dial(ctx, mqttsig.Options{
		Brokers:       []string{"tcp://127.0.0.1:1"}, // nothing listens on port 1
		User:          "alice",
		RetryInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("bob", []byte("x")); !errors.Is(err, mqttsig.ErrNotConnected) {
		t.Fatalf("Send: %v, want ErrNotConnected", err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.WaitConnected(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnected: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctx); !errors.Is(err, mqttsig.ErrClosed) {
		t.Fatalf("WaitConnected after Close: %v", err)
	}
}

func TestParsePresence(t *testing.T) {
	p, err := mqttsig.ParsePresence([]byte(`{"v":1,"state":"online","session":"s","versions":[1]}`))
	if err != nil || p.State != mqttsig.PresenceOnline || p.Session != "s" {
		t.Fatalf("%+v %v", p, err)
	}
	// A cleared retained presence is offline, not an error (§5).
	if p, err := mqttsig.ParsePresence(nil); err != nil || p.State != mqttsig.PresenceOffline {
		t.Errorf("empty presence: %+v %v, want offline", p, err)
	}
	for _, bad := range []string{`{}`, `{"v":2,"state":"online"}`, `{"v":1,"state":"away"}`, `[`} {
		if _, err := mqttsig.ParsePresence([]byte(bad)); err == nil {
			t.Errorf("ParsePresence(%q) accepted", bad)
		}
	}
}

// FuzzParsePresence: a presence payload is untrusted (any user writes its
// own). ParsePresence never panics, and what it accepts is version 1,
// online or offline, and parses again to the same thing once encoded.
func FuzzParsePresence(f *testing.F) {
	for _, s := range []string{
		``, `{"v":1,"state":"online","session":"s","versions":[1]}`, `{"v":1,"state":"offline"}`,
		`{"v":2,"state":"online"}`, `{"v":1,"state":"away"}`, `[`, `null`, `{"v":1,"state":"online","versions":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := mqttsig.ParsePresence(b)
		if err != nil {
			return
		}
		if p.V != 1 || (p.State != mqttsig.PresenceOnline && p.State != mqttsig.PresenceOffline) {
			t.Fatalf("accepted %q as %+v", b, p)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := mqttsig.ParsePresence(again)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("%q: %+v does not survive encoding: %+v %v", b, p, q, err)
		}
	})
}
