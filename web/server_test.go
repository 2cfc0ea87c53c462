package web_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/web"
)

// deviceHTTPS is a device CA's HTTPS certificate in a scratch state dir.
func deviceHTTPS(t *testing.T) *web.HTTPS {
	t.Helper()
	h, err := web.NewHTTPS(config.HTTP{}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })

// keepAliveGet sends one keep-alive request on c and reads the answer.
func keepAliveGet(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: door\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("keep-alive GET: %s (close %v)", resp.Status, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
}

func dialTLS(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialPlain(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits (generously) for the server to close c: a read
// that ends without the deadline passing.
func closedByServer(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil {
		return errors.New("the server sent data instead of closing")
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open after 20 s")
	}
	return nil
}

// Keep-alive connections were never closed: 1,011 idle ones used up the
// descriptors and every phone lost MQTT over WebSocket. Idle connections
// (HTTPS and plain HTTP) and unfinished headers are closed now.
func TestIdleConnectionsClosed(t *testing.T) {
	o := web.ServerOptions{IdleTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 300 * time.Millisecond}
	addr := serveWith(t, deviceHTTPS(t), hello, hello, o)

	secure := dialTLS(t, addr)
	keepAliveGet(t, secure)
	plain := dialPlain(t, addr)
	keepAliveGet(t, plain)
	slow := dialTLS(t, addr)
	if _, err := io.WriteString(slow, "GET / HTTP/1.1\r\nHost: do"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"idle https": secure, "idle plain http": plain, "unfinished header": slow} {
		if err := closedByServer(c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The port holds at most MaxConns connections: the next is closed at once,
// and served again once one goes.
func TestConnectionLimit(t *testing.T) {
	const maxConns = 8
	addr := serveWith(t, deviceHTTPS(t), hello, hello, web.ServerOptions{MaxConns: maxConns})
	var held []net.Conn
	for i := range maxConns {
		var c net.Conn
		if i%2 == 0 {
			c = dialTLS(t, addr)
		} else {
			c = dialPlain(t, addr)
		}
		keepAliveGet(t, c)
		held = append(held, c)
	}
	if err := closedByServer(dialPlain(t, addr)); err != nil {
		t.Fatalf("connection past the limit: %v", err)
	}
	held[0].Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: door\r\nConnection: close\r\n\r\n")
			if err == nil {
				var resp *http.Response
				if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one of %d closed: %v", maxConns, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The others were never disturbed.
	keepAliveGet(t, held[1])
	keepAliveGet(t, held[2])
}

// MQTT over WebSocket lives on a hijacked connection: the read and write
// timeouts of requests must not cut it. Messages go round for many times
// the timeouts on one connection.
func TestWebSocketOutlivesTimeouts(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	mux := http.NewServeMux()
	mux.Handle("/mqtt", env.Broker().WebSocketHandler())
	const limit = 200 * time.Millisecond
	o := web.ServerOptions{ReadHeaderTimeout: limit, ReadTimeout: limit, WriteTimeout: limit, IdleTimeout: limit}
	addr := serveWith(t, deviceHTTPS(t), mux, http.NotFoundHandler(), o)

	var lost atomic.Value
	got := make(chan string, 16)
	opts := paho.NewClientOptions().AddBroker("wss://" + addr + "/mqtt").SetClientID("alice.ws").
		SetUsername("alice").SetPassword(env.Token("alice")).SetProtocolVersion(4).
		SetTLSConfig(&tls.Config{InsecureSkipVerify: true}).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost.Store(err) })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over wss: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("intercomd/v1/inbox/alice/+", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	start := time.Now()
	for i := 0; time.Since(start) < 10*limit; i++ {
		want := fmt.Sprint(i)
		if tok := c.Publish("intercomd/v1/inbox/alice/alice", 1, false, want); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d after %s: %v (lost: %v)", i, time.Since(start), tok.Error(), lost.Load())
		}
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("message %d not back after %s (lost: %v)", i, time.Since(start), lost.Load())
		}
		time.Sleep(limit / 4)
	}
	if err := lost.Load(); err != nil {
		t.Fatalf("connection lost: %v", err)
	}
	if !c.IsConnectionOpen() {
		t.Fatal("connection closed")
	}
}
