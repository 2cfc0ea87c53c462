package broker_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/internal/mqtttest"
)

// rawConn speaks MQTT packet by packet, for what paho will not do: MQTT 5,
// sessions that are not clean, never acknowledging, oversized packets.
type rawConn struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	version byte
}

// dialRaw opens a TCP connection to the broker at addr that will speak the
// MQTT version given (4 is 3.1.1, 5 is MQTT 5).
func dialRaw(t testing.TB, addr string, version byte) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, mqtttest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Reset rather than close: thousands of connections (fuzzing) must
		// not leave thousands of sockets in TIME_WAIT.
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	})
	return &rawConn{t: t, c: c, r: bufio.NewReader(c), version: version}
}

// connectPacket is a CONNECT of r's version.
func (r *rawConn) connectPacket(user, password, clientID string, clean bool) packets.Packet {
	return packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: r.version,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            clean,
			Keepalive:        60,
			ClientIdentifier: clientID,
			UsernameFlag:     user != "",
			Username:         []byte(user),
			PasswordFlag:     true,
			Password:         []byte(password),
		},
	}
}

// connect sends pk (a CONNECT) and returns the CONNACK.
func (r *rawConn) connect(pk packets.Packet) packets.Packet {
	r.t.Helper()
	r.send(pk)
	ack, err := r.read()
	if err != nil {
		r.t.Fatalf("no CONNACK: %v", err)
	}
	if ack.FixedHeader.Type != packets.Connack {
		r.t.Fatalf("got packet type %d, want CONNACK", ack.FixedHeader.Type)
	}
	return ack
}

func (r *rawConn) send(pk packets.Packet) {
	r.t.Helper()
	if err := r.trySend(pk); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) trySend(pk packets.Packet) error {
	b, err := r.tryEncode(pk)
	if err != nil {
		return err
	}
	_ = r.c.SetWriteDeadline(time.Now().Add(mqtttest.Timeout))
	_, err = r.c.Write(b)
	return err
}

// encode returns pk as bytes on the wire, in r's MQTT version.
func (r *rawConn) encode(pk packets.Packet) []byte {
	r.t.Helper()
	b, err := r.tryEncode(pk)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *rawConn) tryEncode(pk packets.Packet) ([]byte, error) {
	pk.ProtocolVersion = r.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	default:
		return nil, fmt.Errorf("rawConn: cannot send packet type %d", pk.FixedHeader.Type)
	}
	return buf.Bytes(), err
}

// read returns the next packet, or an error when the broker closes the
// connection or nothing comes within mqtttest.Timeout.
func (r *rawConn) read() (packets.Packet, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
	var pk packets.Packet
	b, err := r.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = r.version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	return pk, err
}

// readUntil reads packets until one of type typ; it fails the test when the
// connection ends first.
func (r *rawConn) readUntil(typ byte) packets.Packet {
	r.t.Helper()
	for {
		pk, err := r.read()
		if err != nil {
			r.t.Fatalf("waiting for packet type %d: %v", typ, err)
		}
		if pk.FixedHeader.Type == typ {
			return pk
		}
	}
}

// subscribe subscribes to filter at QoS 1 and returns the SUBACK's codes.
func (r *rawConn) subscribe(id uint16, filters ...string) []byte {
	r.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	r.send(pk)
	return r.readUntil(packets.Suback).ReasonCodes
}

// publishPacket is a QoS 1 PUBLISH.
func publishPacket(id uint16, topic string, payload []byte) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		PacketID:    id,
		TopicName:   topic,
		Payload:     payload,
	}
}
