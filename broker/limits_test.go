package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/usersig"
)

// waitLog waits for a broker log line holding every part.
func waitLog(t *testing.T, env *mqtttest.Env, parts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	if err := env.Logs.WaitFor(ctx, parts...); err != nil {
		t.Fatal(err)
	}
}

// waitClosed fails the test unless the broker closes r's connection.
func waitClosed(t *testing.T, r *rawConn, what string) {
	t.Helper()
	for {
		if _, err := r.read(); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatalf("%s: still open after %v", what, mqtttest.Timeout)
			}
			return
		}
	}
}

// User "alice" must not take the place of user "alice-bob", whose client
// ID starts with "alice-": the victim keeps its connection and its will is
// not sent.
func TestNoTakeoverOfAnotherUser(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	victim := dialRaw(t, addr, 4)
	if ack := victim.connect(victim.connectPacket("alice-bob", env.Token("alice-bob"), "alice-bob.s1", true)); ack.ReasonCode != 0 {
		t.Fatalf("victim refused: %#x", ack.ReasonCode)
	}
	for _, id := range []string{"alice-bob.s1", "alice-bob-s1", "alice-bob", "alice.", "alice.a/b", "alice-s1"} {
		for _, v := range []byte{4, 5} {
			a := dialRaw(t, addr, v)
			if ack := a.connect(a.connectPacket("alice", env.Token("alice"), id, true)); ack.ReasonCode == 0 {
				t.Fatalf("alice admitted with client id %q (MQTT v%d)", id, v)
			}
			waitLog(t, env, "mqtt connection refused", "user=alice", "client id does not belong")
		}
	}
	// The victim is still connected: it can subscribe.
	if codes := victim.subscribe(1, env.Layout.Presence("alice")); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("victim's subscribe after the attempts: %v", codes)
	}
	if strings.Contains(env.Logs.String(), "client=alice-bob.s1 reason") {
		t.Fatal("victim's connection was closed")
	}
}

// An empty client ID gets one in the user's name.
func TestAssignedClientID(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	r := dialRaw(t, env.Broker().Addr(), 5)
	ack := r.connect(r.connectPacket("alice", env.Token("alice"), "", true))
	if ack.ReasonCode != 0 || !strings.HasPrefix(ack.Properties.AssignedClientID, "alice.") {
		t.Fatalf("CONNACK %#x, assigned client id %q", ack.ReasonCode, ack.Properties.AssignedClientID)
	}
}

// No session outlives its connection or is resumed, whatever the client
// asks: a message sent meanwhile is not queued, a message in flight is not
// handed to the next connection.
func TestNoSessionResumption(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	inbox := env.Layout.Inbox("alice", "bob")
	bob := dialRaw(t, addr, 4)
	bob.connect(bob.connectPacket("bob", env.Token("bob"), "bob.s1", true))
	publish := func(id uint16, payload string) {
		t.Helper()
		bob.send(publishPacket(id, inbox, []byte(payload)))
		bob.readUntil(packets.Puback)
	}
	persistent := func(r *rawConn) packets.Packet {
		pk := r.connectPacket("alice", env.Token("alice"), "alice.s1", false)
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 3600, true
		return pk
	}
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			// Disconnected, then back: nothing was kept.
			a := dialRaw(t, addr, v)
			if ack := a.connect(persistent(a)); ack.ReasonCode != 0 || ack.SessionPresent {
				t.Fatalf("CONNACK %#x, session present %v", ack.ReasonCode, ack.SessionPresent)
			}
			a.subscribe(1, inbox)
			a.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
			waitClosed(t, a, "after DISCONNECT")
			publish(1, "while away")

			// Connected, holding an unacknowledged message, and taken over
			// by a new connection with the same client ID.
			b := dialRaw(t, addr, v)
			if ack := b.connect(persistent(b)); ack.SessionPresent {
				t.Fatal("session resumed after a disconnection")
			}
			b.subscribe(2, inbox)
			publish(2, "in flight")
			if pk := b.readUntil(packets.Publish); string(pk.Payload) != "in flight" {
				t.Fatalf("got %q, want the message in flight", pk.Payload)
			}
			c := dialRaw(t, addr, v)
			if ack := c.connect(persistent(c)); ack.SessionPresent {
				t.Fatal("session resumed by a takeover")
			}
			waitClosed(t, b, "taken over connection")
			c.subscribe(3, inbox)
			publish(3, "marker")
			if pk := c.readUntil(packets.Publish); string(pk.Payload) != "marker" {
				t.Fatalf("new connection got %q before the marker", pk.Payload)
			}
			c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
			waitClosed(t, c, "after DISCONNECT")
		})
	}
}

// Refusals use the codes of the client's MQTT version [MQTT-3.2.2-3 and
// table 3.1 of 3.1.1; 3.2.2.2 of 5]: bad username or token 0x04/0x86, not
// allowed 0x05/0x87, client ID not the user's 0x02/0x85, too many
// connections 0x03/0x97. An empty password (allowed by MQTT 3.1.1) is no
// protocol error.
func TestRefusalCodes(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	for _, tt := range []struct {
		name   string
		edit   func(*packets.Packet)
		v3, v5 byte
	}{
		{"empty password", func(pk *packets.Packet) { pk.Connect.Password = nil }, 0x04, 0x86},
		{"no password", func(pk *packets.Packet) { pk.Connect.Password, pk.Connect.PasswordFlag = nil, false }, 0x04, 0x86},
		{"bad token", func(pk *packets.Packet) { pk.Connect.Password = []byte("v1.alice.1.AAAA") }, 0x04, 0x86},
		{"another user's token", func(pk *packets.Packet) { pk.Connect.Password = []byte(env.Token("bob")) }, 0x04, 0x86},
		{"another user's client id", func(pk *packets.Packet) { pk.Connect.ClientIdentifier = "bob.s1" }, 0x02, 0x85},
		{"will on another's presence", func(pk *packets.Packet) {
			pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, env.Layout.Presence("bob"), []byte("x")
		}, 0x05, 0x87},
	} {
		for _, v := range []byte{4, 5} {
			r := dialRaw(t, addr, v)
			pk := r.connectPacket("alice", env.Token("alice"), "alice.s1", true)
			tt.edit(&pk)
			want := map[byte]byte{4: tt.v3, 5: tt.v5}[v]
			if ack := r.connect(pk); ack.ReasonCode != want {
				t.Errorf("v%d %s: CONNACK code %#x, want %#x", v, tt.name, ack.ReasonCode, want)
			}
		}
	}
	// Past the connections per user.
	tok := env.Token("carol")
	for i := range broker.DefaultMaxConnsPerUser {
		r := dialRaw(t, addr, 4)
		if ack := r.connect(r.connectPacket("carol", tok, fmt.Sprintf("carol.s%d", i), true)); ack.ReasonCode != 0 {
			t.Fatalf("connection %d refused: %#x", i, ack.ReasonCode)
		}
	}
	for v, want := range map[byte]byte{4: 0x03, 5: 0x97} {
		r := dialRaw(t, addr, v)
		if ack := r.connect(r.connectPacket("carol", tok, "carol.more", true)); ack.ReasonCode != want {
			t.Errorf("v%d past the connections per user: CONNACK code %#x, want %#x", v, ack.ReasonCode, want)
		}
	}
	// A malformed MQTT 3.1.1 CONNECT (reserved flag set) ends the
	// connection without CONNACK [MQTT-3.1.4-1], with a log line.
	r := dialRaw(t, addr, 4)
	raw := r.encode(r.connectPacket("alice", env.Token("alice"), "alice.bad", true))
	// fixed header (2 bytes here), protocol name (6), level (1), flags
	raw[2+6+1] |= 1
	if _, err := r.c.Write(raw); err != nil {
		t.Fatal(err)
	}
	if got, err := r.read(); err == nil {
		t.Fatalf("malformed CONNECT answered with packet type %d, code %#x", got.FixedHeader.Type, got.ReasonCode)
	}
	waitLog(t, env, "mqtt connection refused", "client=alice.bad", "malformed CONNECT")
}

// A client asking for no keep-alive, or a very long one, gets MaxKeepAlive
// (an MQTT 5 client is told so), so that a connection gone silent ends.
func TestKeepAliveBounded(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	for _, asked := range []uint16{0, 3600} {
		r := dialRaw(t, env.Broker().Addr(), 5)
		pk := r.connectPacket("alice", env.Token("alice"), "alice.k", true)
		pk.Connect.Keepalive = asked
		ack := r.connect(pk)
		if ack.ReasonCode != 0 || !ack.Properties.ServerKeepAliveFlag || ack.Properties.ServerKeepAlive != broker.MaxKeepAlive {
			t.Errorf("keep-alive %d asked: CONNACK %#x, server keep-alive %v %d", asked, ack.ReasonCode,
				ack.Properties.ServerKeepAliveFlag, ack.Properties.ServerKeepAlive)
		}
	}
}

// A packet past the limit closes the connection with a log line saying so;
// a message of the protocol's largest size passes.
func TestPacketTooLarge(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	r := dialRaw(t, env.Broker().Addr(), 4)
	r.connect(r.connectPacket("alice", env.Token("alice"), "alice.s1", true))
	inbox := env.Layout.Inbox("alice", "alice")
	r.subscribe(1, inbox)
	r.send(publishPacket(2, inbox, bytes.Repeat([]byte("x"), calling.MaxMessageSize)))
	if pk := r.readUntil(packets.Publish); len(pk.Payload) != calling.MaxMessageSize {
		t.Fatalf("largest message: got %d bytes", len(pk.Payload))
	}
	_ = r.trySend(publishPacket(3, inbox, make([]byte, 1<<20)))
	waitClosed(t, r, "after a 1 MiB packet")
	waitLog(t, env, "mqtt connection closed: packet too large", "user=alice", "client=alice.s1")
}

// One user holds at most DefaultMaxConnsPerUser connections; a connection
// taking over one of them (same client ID) is not refused.
func TestConnectionsPerUser(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	tok := env.Token("alice")
	for i := range broker.DefaultMaxConnsPerUser {
		r := dialRaw(t, addr, 4)
		if ack := r.connect(r.connectPacket("alice", tok, fmt.Sprintf("alice.s%d", i), true)); ack.ReasonCode != 0 {
			t.Fatalf("connection %d refused: %#x", i, ack.ReasonCode)
		}
	}
	r := dialRaw(t, addr, 4)
	if ack := r.connect(r.connectPacket("alice", tok, "alice.one-too-many", true)); ack.ReasonCode == 0 {
		t.Fatal("connection past the limit admitted")
	}
	waitLog(t, env, "mqtt connection refused", "user=alice", "too many connections")
	r = dialRaw(t, addr, 4)
	if ack := r.connect(r.connectPacket("alice", tok, "alice.s0", true)); ack.ReasonCode != 0 {
		t.Fatalf("takeover of one's own connection refused: %#x", ack.ReasonCode)
	}
	// Other users are not affected.
	r = dialRaw(t, addr, 4)
	if ack := r.connect(r.connectPacket("bob", env.Token("bob"), "bob.s0", true)); ack.ReasonCode != 0 {
		t.Fatalf("bob refused: %#x", ack.ReasonCode)
	}
}

// A connection ends when its token expires, and at once on Disconnect (a
// revoked token); its will is sent.
func TestConnectionEndsWithItsToken(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	watcher := dialRaw(t, addr, 4)
	watcher.connect(watcher.connectPacket("bob", env.Token("bob"), "bob.w", true))
	watcher.subscribe(1, env.Layout.Presence("alice"))

	short, err := usersig.Sign(env.Secret(), "alice", time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, addr, 4)
	pk := r.connectPacket("alice", short, "alice.s1", true)
	pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload, pk.Connect.WillQos = true, env.Layout.Presence("alice"), []byte("offline"), 1
	if ack := r.connect(pk); ack.ReasonCode != 0 {
		t.Fatalf("refused: %#x", ack.ReasonCode)
	}
	waitClosed(t, r, "connection of an expired token")
	waitLog(t, env, "mqtt connection closed", "user=alice", "client=alice.s1", "reason=\"token expired\"")
	if got := watcher.readUntil(packets.Publish); string(got.Payload) != "offline" {
		t.Fatalf("will: %q", got.Payload)
	}

	tok := env.Token("alice")
	r = dialRaw(t, addr, 4)
	r.connect(r.connectPacket("alice", tok, "alice.s2", true))
	other := dialRaw(t, addr, 4)
	tok2, err := usersig.Sign(env.Secret(), "alice", time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other.connect(other.connectPacket("alice", tok2, "alice.s3", true))
	n := env.Broker().Disconnect(func(user, token string) bool { return user == "alice" && token == tok }, "token revoked")
	if n != 1 {
		t.Fatalf("Disconnect closed %d connections, want 1", n)
	}
	waitClosed(t, r, "connection of a revoked token")
	if codes := other.subscribe(1, env.Layout.Presence("bob")); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("the other token's connection: subscribe %v", codes)
	}
}

// One connection holds at most MaxSubscriptions filters.
func TestSubscriptionsPerConnection(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	r := dialRaw(t, env.Broker().Addr(), 4)
	r.connect(r.connectPacket("alice", env.Token("alice"), "alice.s1", true))
	var filters []string
	for i := range broker.MaxSubscriptions + 4 {
		filters = append(filters, env.Layout.Presence(fmt.Sprintf("u%d", i)))
	}
	codes := r.subscribe(1, filters...)
	for i, c := range codes {
		if ok := c == 1; ok != (i < broker.MaxSubscriptions) {
			t.Fatalf("filter %d: code %#x", i, c)
		}
	}
	// Subscribing again to a held filter is fine.
	if codes := r.subscribe(2, filters[0]); codes[0] != 1 {
		t.Fatalf("again: %#x", codes[0])
	}
	waitLog(t, env, "mqtt subscriptions refused", "user=alice")
}

// Clients admitted by CheckCredentials (the daemon itself) neither count
// against their user's connections nor are closed by Disconnect, which is
// about tokens: a user holding tokens of the device's user cannot lock the
// device out, and the daemon's check of revoked tokens leaves its own
// connection alone.
func TestCredentialClientsUnbounded(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{
		CheckCredentials: func(user string, password []byte) bool {
			return user == "door" && string(password) == "door-password"
		},
	})
	addr := env.Broker().Addr()
	tok := env.Token("door")
	for i := range broker.DefaultMaxConnsPerUser {
		r := dialRaw(t, addr, 4)
		if ack := r.connect(r.connectPacket("door", tok, fmt.Sprintf("door.t%d", i), true)); ack.ReasonCode != 0 {
			t.Fatalf("token connection %d refused: %#x", i, ack.ReasonCode)
		}
	}
	device := dialRaw(t, addr, 4)
	if ack := device.connect(device.connectPacket("door", "door-password", "door.device", true)); ack.ReasonCode != 0 {
		t.Fatalf("the device refused with its user's token connections full: %#x", ack.ReasonCode)
	}
	if n := env.Broker().Disconnect(func(user, token string) bool { return true }, "token revoked"); n != broker.DefaultMaxConnsPerUser {
		t.Fatalf("Disconnect closed %d connections, want the %d token connections", n, broker.DefaultMaxConnsPerUser)
	}
	if codes := device.subscribe(1, env.Layout.Presence("alice")); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("the device's connection after Disconnect: subscribe %v", codes)
	}
}
