package broker_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/usersig"
)

// wsFrame is one WebSocket frame of opcode op (FIN set unless more),
// masked as a client's must be unless unmasked.
func wsFrame(op byte, payload []byte, more, unmasked bool) []byte {
	b := []byte{op}
	if !more {
		b[0] |= 0x80
	}
	mask := byte(0x80)
	if unmasked {
		mask = 0
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n < 1<<16:
		b = append(b, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// mqttPacket is an MQTT control packet: fixed header byte, remaining
// length, body.
func mqttPacket(head byte, body []byte) []byte {
	b := []byte{head}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	return append(b, body...)
}

func mqttString(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// mqttConnect is a CONNECT (MQTT 3.1.1, clean session) as user with
// password.
func mqttConnect(user, password string) []byte {
	body := append(mqttString("MQTT"), 4, 0xC2, 0, 30)
	body = append(body, mqttString(user+"-fuzz")...)
	body = append(body, mqttString(user)...)
	body = append(body, mqttString(password)...)
	return mqttPacket(0x10, body)
}

// FuzzWebSocketFrames sends any bytes as the frames of an upgraded MQTT
// over WebSocket connection (the path every phone's app speaks): the
// broker never crashes, closes a connection whose client has gone, and
// upgrades the next connection as before.
func FuzzWebSocketFrames(f *testing.F) {
	secret := []byte("ws-fuzz-secret-0123456789abcdef")
	b, err := broker.New(broker.Options{Secret: secret})
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	srv := httptest.NewServer(b.WebSocketHandler())
	f.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tok, err := usersig.Sign(secret, "alice", time.Now().Add(24*time.Hour))
	if err != nil {
		f.Fatal(err)
	}

	connect := mqttConnect("alice", tok)
	publish := mqttPacket(0x32, append(append(mqttString("intercomd/v1/inbox/door/alice"), 0, 1), `{"v":1,"type":"call"}`...))
	subscribe := mqttPacket(0x82, append([]byte{0, 2}, append(mqttString("intercomd/v1/inbox/alice/+"), 1)...))
	ping, disconnect := []byte{0xC0, 0}, []byte{0xE0, 0}
	bin := func(p []byte) []byte { return wsFrame(2, p, false, false) }
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, seed := range [][]byte{
		bin(connect),
		cat(bin(connect), bin(subscribe), bin(publish), bin(ping), bin(disconnect)),
		bin(cat(connect, subscribe, publish)),                                            // several packets in one frame
		cat(wsFrame(2, connect[:7], true, false), wsFrame(0, connect[7:], false, false)), // fragmented
		cat(bin(connect), wsFrame(9, []byte("ping"), false, false), wsFrame(8, []byte{3, 232}, false, false)),
		wsFrame(1, connect, false, false),                                        // text, not binary
		wsFrame(2, connect, false, true),                                         // unmasked
		bin(mqttConnect("mallory", tok)),                                         // someone else's token
		bin(mqttPacket(0x10, []byte{0, 4, 'M', 'Q', 'T', 'T', 4})),               // truncated CONNECT
		bin([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}),                                // PUBLISH announcing 256 MB
		{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}, // 2^63 bytes
		cat(bin(connect), bin(publish[:5])),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frames []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		const upgrade = "GET /mqtt HTTP/1.1\r\nHost: door\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
		if _, err := io.WriteString(c, upgrade); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		if _, err := c.Write(frames); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatal(err)
		}
		// The client goes: the broker must close its side.
		_ = c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, br); err != nil && !isReset(err) {
			t.Fatalf("the broker kept a connection whose client had gone: %v", err)
		}
	})
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (strings.Contains(op.Err.Error(), "reset") || strings.Contains(op.Err.Error(), "broken pipe"))
}
