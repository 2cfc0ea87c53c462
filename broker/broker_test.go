package broker_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/usersig"
)

var groups = map[string][]string{"family": {"alice", "bob"}}

func TestAuthentication(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{
		Groups: groups,
		CheckCredentials: func(user string, password []byte) bool {
			return user == "door" && string(password) == "door-password"
		},
	})
	other, err := usersig.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	sign := func(secret []byte, user string, exp time.Time) string {
		tok, err := usersig.Sign(secret, user, exp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hour := time.Now().Add(time.Hour)
	forged := sign(other, "alice", hour)
	expired := sign(env.Secret(), "alice", time.Now().Add(-time.Second))
	bobs := sign(env.Secret(), "bob", hour)
	good := env.Token("alice")

	tests := []struct {
		name, user, password, clientID string
		reason                         string // "" = accepted
	}{
		{"valid token", "alice", good, "alice.s1", ""},
		{"client id equal to user", "alice", good, "alice", ""},
		{"extra credentials", "door", "door-password", "door.1", ""},
		{"no token", "alice", "", "alice.s2", "no token"},
		{"bad signature", "alice", forged, "alice.s3", "bad token signature"},
		{"expired", "alice", expired, "alice.s4", "token expired"},
		{"token of another user", "alice", bobs, "alice.s5", "username does not match"},
		{"malformed token", "alice", "not-a-token", "alice.s6", "malformed token"},
		{"no username", "", good, "x.1", "invalid or missing username"},
		{"username not an id", "al/ice", good, "al/ice.1", "invalid or missing username"},
		{"someone else's client id", "alice", good, "bob.s1", "client id does not belong"},
		{"client id sharing a prefix", "alice", good, "alicex", "client id does not belong"},
		{"extra credentials, wrong password", "door", "guess", "door.2", "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.RawConnect(env.RawOptions(tt.user, tt.password, tt.clientID))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
			defer cancel()
			if err := env.Logs.WaitFor(ctx, "mqtt connection refused", "client="+tt.clientID, tt.reason); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, secret := range []string{good, forged, expired, bobs, "door-password"} {
		if strings.Contains(env.Logs.String(), secret) {
			t.Fatalf("a credential was logged: %q", secret)
		}
	}
}

func TestLastWillMustBeAllowed(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{Groups: groups})
	for _, tt := range []struct {
		topic  string
		retain bool
		ok     bool
	}{
		{env.Layout.Presence("alice"), true, true},
		{env.Layout.Presence("bob"), true, false},
		{env.Layout.Inbox("bob", "alice"), false, true},
		{env.Layout.Inbox("bob", "alice"), true, false},
		{env.Layout.Inbox("alice", "bob"), false, false},
		{"elsewhere", false, false},
	} {
		o := env.RawOptions("alice", env.Token("alice"), "alice.will")
		o.SetWill(tt.topic, "gone", 1, tt.retain)
		_, err := env.RawConnect(o)
		if (err == nil) != tt.ok {
			t.Errorf("will on %s (retain %v): connect error %v, want accepted=%v", tt.topic, tt.retain, err, tt.ok)
		}
	}
}

func TestRetainOnlyOnPresence(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{Groups: groups})
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	alice, err := env.RawConnect(env.RawOptions("alice", env.Token("alice"), "alice.raw"))
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{env.Layout.Inbox("bob", "alice"), env.Layout.Group("family", "alice")} {
		tok := alice.Publish(topic, 1, true, []byte("left behind"))
		if !tok.WaitTimeout(mqtttest.Timeout) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	// bob connects afterwards: only live messages reach him.
	bob := env.Client("bob")
	sender := env.Client("alice")
	if err := sender.Send("bob", []byte("marker")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case in := <-bob.Inbound():
			if in.Kind == mqttsig.Presence {
				continue
			}
			// mochi acknowledges a publish before fanning it out, so bob
			// may legitimately get it live if he subscribes in between;
			// never as a stored, retained message.
			if in.Retained {
				t.Fatalf("bob received a retained %v message %q", in.Kind, in.Payload)
			}
			if string(in.Payload) == "marker" {
				return
			}
		case <-ctx.Done():
			t.Fatal("marker not received")
		}
	}
}

func TestWebSocketHandler(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{Groups: groups})
	// Refused over WebSocket as over TCP.
	o := env.RawOptions("alice", "v1.alice.1.AAAA", "alice.ws")
	o.Servers = nil
	o.AddBroker(env.WSURL())
	if _, err := env.RawConnect(o); err == nil {
		t.Fatal("bad token accepted over websocket")
	}
	// A plain HTTP request is not upgraded.
	srv := httptest.NewServer(env.Broker().WebSocketHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET answered %s", resp.Status)
	}
	// Accepted, and the broker's Close ends the WebSocket session too.
	alice := env.Client("alice", func(o *mqttsig.Options) { o.Brokers = []string{env.WSURL()} })
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	env.Stop()
	for alice.Connected() {
		select {
		case <-alice.Status():
		case <-ctx.Done():
			t.Fatal("websocket client still connected after broker Close")
		}
	}
}

func TestStoppedBrokerRefusesWebSocket(t *testing.T) {
	leaktest.Check(t)
	secret, _ := usersig.NewSecret()
	b, err := broker.New(broker.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr() != "" {
		t.Fatalf("Addr without TCP = %q", b.Addr())
	}
	srv := httptest.NewServer(b.WebSocketHandler())
	defer srv.Close()
	get := func() int {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d", code)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Fatal("second Start accepted")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", code)
	}
	if err := b.Start(); err == nil {
		t.Fatal("Start after Close accepted")
	}
}

func TestNewValidates(t *testing.T) {
	secret, _ := usersig.NewSecret()
	for name, o := range map[string]broker.Options{
		"no secret":    {},
		"short secret": {Secret: secret[:8]},
		"bad prefix":   {Secret: secret, Prefix: "a/#"},
		"bad group":    {Secret: secret, Groups: map[string][]string{"a b": {"alice"}}},
		"bad member":   {Secret: secret, Groups: map[string][]string{"g": {"al+ce"}}},
		"bad address":  {Secret: secret, Addr: "127.0.0.1:99999"},
	} {
		if b, err := broker.New(o); err == nil {
			_ = b.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	// Closing a broker that never started releases its port.
	b, err := broker.New(broker.Options{Secret: secret, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = broker.New(broker.Options{Secret: secret, Addr: addr})
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = b.Close()
}

func TestDeniedPublishDisconnects(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{Groups: groups})
	lost := make(chan error, 1)
	o := env.RawOptions("alice", env.Token("alice"), "alice.raw")
	o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	alice, err := env.RawConnect(o)
	if err != nil {
		t.Fatal(err)
	}
	alice.Publish(env.Layout.Presence("bob"), 1, true, []byte(`{"v":1,"state":"offline"}`))
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("client that published as bob is still connected")
	}
	if err := env.Logs.WaitFor(ctx, "mqtt access denied", "user=alice", "op=publish", "presence/bob"); err != nil {
		t.Fatal(err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// A connection that never sends CONNECT, over TCP or WebSocket, must not
// keep Close from returning.
func TestCloseWithSilentConnections(t *testing.T) {
	leaktest.Check(t)
	secret, _ := usersig.NewSecret()
	b, err := broker.New(broker.Options{Secret: secret, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.WebSocketHandler())
	defer srv.Close()
	tcp, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), http.Header{"Sec-WebSocket-Protocol": {"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(broker.ConnectTimeout / 2):
		t.Fatal("Close blocked by connections that never sent CONNECT")
	}
	// Both sockets were closed by the broker.
	_ = tcp.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	if _, err := tcp.Read(make([]byte, 1)); err == nil {
		t.Fatal("tcp connection still open")
	}
	_ = ws.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("websocket still open")
	}
}
