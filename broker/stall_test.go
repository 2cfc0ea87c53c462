package broker_test

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// dialSmallWindow is dialRaw with a tiny receive buffer, so that the
// broker's writes to a client that stops reading block after a few
// kilobytes, as they do for a phone whose network went away.
func dialSmallWindow(t *testing.T, addr string, version byte) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: mqtttest.Timeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// A small window, and small segments so that the broker's send
			// buffer stays as small as over a real network (on loopback
			// it grows with the 64 KiB segments to megabytes).
			serr = errors.Join(syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096),
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1200))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c), version: version}
}

// A client that subscribes to everybody's presence and then stops reading
// must not hold up anybody else: bob's publishes are acknowledged and reach
// alice while mallory's connection is stuck. (mochi writes to a client
// holding the client's lock, which a publisher delivering to it takes too.)
func TestStalledClientHoldsUpNobody(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	addr := env.Broker().Addr()
	all := env.Layout.Presence("+")

	mallory := dialSmallWindow(t, addr, 4)
	mallory.connect(mallory.connectPacket("mallory", env.Token("mallory"), "mallory.stuck", true))
	mallory.subscribe(1, all)
	alice := dialRaw(t, addr, 4)
	alice.connect(alice.connectPacket("alice", env.Token("alice"), "alice.s1", true))
	alice.subscribe(1, env.Layout.Presence("bob"))
	bob := dialRaw(t, addr, 4)
	bob.connect(bob.connectPacket("bob", env.Token("bob"), "bob.s1", true))

	// mallory fills its own pipe with its presence, and reads no more: more
	// than the sockets hold, less than the broker's budget of
	// unacknowledged messages (which would stop deliveries to mallory).
	big := bytes.Repeat([]byte("m"), 60<<10)
	const fill = 15
	if fill*len(big) >= broker.MaxQueuedBytes || fill*len(big) < 2*broker.MaxPendingWrite {
		t.Fatalf("the fill (%d bytes) must pass the sockets and stay under MaxQueuedBytes", fill*len(big))
	}
	filler := dialRaw(t, addr, 4)
	filler.connect(filler.connectPacket("mallory", env.Token("mallory"), "mallory.filler", true))
	go func() {
		for i := range fill {
			pk := publishPacket(uint16(i+1), env.Layout.Presence("mallory"), big)
			pk.FixedHeader.Retain = true
			if filler.trySend(pk) != nil {
				return
			}
		}
	}()

	// bob's presence keeps going through meanwhile.
	deadline := time.Now().Add(mqtttest.Timeout)
	for i := range 20 {
		payload := []byte{byte('a' + i)}
		pk := publishPacket(uint16(i+1), env.Layout.Presence("bob"), payload)
		pk.FixedHeader.Retain = true
		bob.send(pk)
		if ack := bob.readUntil(packets.Puback); ack.PacketID != uint16(i+1) {
			t.Fatalf("bob's publish %d: PUBACK for %d", i+1, ack.PacketID)
		}
		for {
			got := alice.readUntil(packets.Publish)
			if got.FixedHeader.Qos > 0 {
				alice.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: got.PacketID})
			}
			if bytes.Equal(got.Payload, payload) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's presence %d of 20 took past %v", i+1, mqtttest.Timeout)
		}
	}
}
