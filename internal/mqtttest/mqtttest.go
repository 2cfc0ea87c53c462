// Package mqtttest starts real MQTT brokers for tests: intercomd's embedded
// broker (StartEmbedded) and a real Mosquitto process (StartMosquitto), both
// on loopback ports, both enforcing the access rule of package topic. An Env
// hands out credentials, connected mqttsig clients and raw paho options, can
// stop and restart its broker on the same port, and cleans everything up when
// the test ends.
//
// NewProxy puts a TCP relay in front of either broker that a test can cut,
// to kill a client's connection abruptly (last-will tests).
//
// Logs of the broker and of the clients made by an Env go to Env.Logs, which
// tests can search; they are printed when the test fails.
//
// StartMosquitto skips the test with a message naming the Debian package
// "mosquitto" when the binaries are missing, unless CI=true, where it fails.
//
// An Env belongs to one test; its methods may be called from that test's
// goroutines.
package mqtttest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/mqttsig/topic"
)

// Broker kinds.
const (
	Embedded  = "embedded"
	Mosquitto = "mosquitto"
)

// Timeout bounds every wait in this package (broker start, connect). It is
// generous because test machines are loaded.
const Timeout = 30 * time.Second

// Options configures StartEmbedded.
type Options struct {
	// Prefix is the topic prefix; "" means topic.DefaultPrefix.
	Prefix string
	// Groups maps group IDs to member user IDs.
	Groups map[string][]string
	// CheckCredentials is passed to broker.Options.
	CheckCredentials func(user string, password []byte) bool
}

// Env is a running test broker.
type Env struct {
	// Kind is Embedded or Mosquitto.
	Kind string
	// Layout is the topic layout in use.
	Layout topic.Layout
	// Groups is the group table the broker enforces.
	Groups map[string][]string
	// Logs collects broker and client logs.
	Logs *LogBuffer

	t      testing.TB
	logger *slog.Logger
	impl   envImpl
}

type envImpl interface {
	url() string
	wsURL() string
	password(t testing.TB, user string) string
	stop(t testing.TB)
	start(t testing.TB)
}

// URL is the broker's tcp:// URL.
func (e *Env) URL() string { return e.impl.url() }

// WSURL is the broker's ws:// URL (MQTT over WebSocket).
func (e *Env) WSURL() string { return e.impl.wsURL() }

// Password returns the password user connects with: a fresh token on the
// embedded broker, the configured password on Mosquitto.
func (e *Env) Password(user string) string {
	e.t.Helper()
	return e.impl.password(e.t, user)
}

// Logger returns a logger writing to e.Logs.
func (e *Env) Logger() *slog.Logger { return e.logger }

// Stop stops the broker abruptly (clients see their connection drop).
func (e *Env) Stop() {
	e.t.Helper()
	e.impl.stop(e.t)
}

// Start starts the broker again on the same port(s) after Stop.
func (e *Env) Start() {
	e.t.Helper()
	e.impl.start(e.t)
}

// Restart stops the broker and starts a new one on the same port(s).
// Retained messages and sessions are lost, as after a real restart.
func (e *Env) Restart() {
	e.t.Helper()
	e.Stop()
	e.Start()
}

// ClientOptions returns mqttsig options for user on this broker (TCP), with
// short retry intervals. Groups are filled from the Env's group table.
func (e *Env) ClientOptions(user string) mqttsig.Options {
	e.t.Helper()
	var groups []string
	for g, members := range e.Groups {
		for _, m := range members {
			if m == user {
				groups = append(groups, g)
			}
		}
	}
	return mqttsig.Options{
		Brokers:          []string{e.URL()},
		User:             user,
		Password:         e.Password(user),
		Groups:           groups,
		Prefix:           e.Layout.Prefix(),
		Logger:           e.logger.With("client", user),
		RetryInterval:    100 * time.Millisecond,
		MaxRetryInterval: time.Second,
		SendTimeout:      10 * time.Second,
		ConnectTimeout:   10 * time.Second,
	}
}

// Client dials an mqttsig client for user (options from ClientOptions,
// adjusted by the edit functions), waits until it is connected and
// subscribed, and closes it when the test ends.
func (e *Env) Client(user string, edit ...func(*mqttsig.Options)) *mqttsig.Client {
	e.t.Helper()
	opts := e.ClientOptions(user)
	for _, f := range edit {
		f(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, err := mqttsig.Dial(ctx, opts)
	if err != nil {
		e.t.Fatalf("dial %s: %v", user, err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	if err := c.WaitConnected(ctx); err != nil {
		e.t.Fatalf("client %s on %s broker: %v\nlogs:\n%s", user, e.Kind, err, e.Logs)
	}
	return c
}

// RawOptions returns paho options for a bare client of this broker with the
// given credentials and client ID: no retries, no reconnects, ordered
// delivery. Tests use it to act as a misbehaving client.
func (e *Env) RawOptions(username, password, clientID string) *paho.ClientOptions {
	o := paho.NewClientOptions()
	o.AddBroker(e.URL())
	o.SetClientID(clientID)
	o.SetUsername(username)
	o.SetPassword(password)
	o.SetProtocolVersion(4)
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(10 * time.Second)
	o.SetWriteTimeout(10 * time.Second)
	return o
}

// RawConnect connects a bare paho client and disconnects it when the test
// ends. It returns the connect error (for example a refusal) rather than
// failing the test.
func (e *Env) RawConnect(o *paho.ClientOptions) (paho.Client, error) {
	e.t.Helper()
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(Timeout) {
		c.Disconnect(0)
		return nil, fmt.Errorf("raw connect: no answer within %v", Timeout)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func newEnv(t testing.TB, kind, prefix string, groups map[string][]string) *Env {
	t.Helper()
	layout, err := topic.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	logs := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s broker and client logs:\n%s", kind, logs)
		}
	})
	return &Env{
		Kind:   kind,
		Layout: layout,
		Groups: groups,
		Logs:   logs,
		t:      t,
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LogBuffer is a concurrency-safe log sink that tests can search.
type LogBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many log lines contain every one of the substrings.
func (b *LogBuffer) Count(substrings ...string) int {
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if containsAll(line, substrings) {
			n++
		}
	}
	return n
}

// WaitFor waits until a log line contains every one of the substrings, or
// ctx ends.
func (b *LogBuffer) WaitFor(ctx context.Context, substrings ...string) error {
	for {
		b.mu.Lock()
		found := false
		for _, line := range strings.Split(b.buf.String(), "\n") {
			if containsAll(line, substrings) {
				found = true
				break
			}
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("no log line with %q: %w", substrings, ctx.Err())
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
