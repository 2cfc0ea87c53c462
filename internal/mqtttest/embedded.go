package mqtttest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/usersig"
)

// StartEmbedded starts intercomd's embedded broker on a 127.0.0.1 port with a
// fresh secret, plus an HTTP test server that serves its WebSocket endpoint.
// Both stop when the test ends.
func StartEmbedded(t testing.TB, o Options) *Env {
	t.Helper()
	e := newEnv(t, Embedded, o.Prefix, o.Groups)
	secret, err := usersig.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	em := &embedded{
		t: t,
		opts: broker.Options{
			Addr:             "127.0.0.1:0",
			Secret:           secret,
			Prefix:           o.Prefix,
			Groups:           o.Groups,
			Logger:           e.logger,
			CheckCredentials: o.CheckCredentials,
		},
	}
	em.start(t)
	em.opts.Addr = em.b.Addr() // restarts reuse the port
	em.http = httptest.NewServer(http.HandlerFunc(em.serveWS))
	t.Cleanup(func() {
		em.http.CloseClientConnections()
		em.stop(t)
		em.http.Close()
	})
	e.impl = em
	return e
}

// Secret returns the embedded broker's token secret.
func (e *Env) Secret() []byte {
	e.t.Helper()
	em, ok := e.impl.(*embedded)
	if !ok {
		e.t.Fatalf("Secret: %s broker has no token secret", e.Kind)
	}
	return em.opts.Secret
}

// Token returns a token for user valid for an hour (embedded broker only).
func (e *Env) Token(user string) string {
	e.t.Helper()
	tok, err := usersig.Sign(e.Secret(), user, time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatalf("token for %q: %v", user, err)
	}
	return tok
}

// Broker returns the running embedded broker.
func (e *Env) Broker() *broker.Broker {
	e.t.Helper()
	em, ok := e.impl.(*embedded)
	if !ok {
		e.t.Fatalf("Broker: not an embedded broker but %s", e.Kind)
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	return em.b
}

type embedded struct {
	t    testing.TB
	opts broker.Options
	http *httptest.Server

	mu sync.Mutex
	b  *broker.Broker // nil while stopped
}

func (em *embedded) url() string { return "tcp://" + em.opts.Addr }

func (em *embedded) wsURL() string {
	return "ws://" + strings.TrimPrefix(em.http.URL, "http://") + "/mqtt"
}

func (em *embedded) password(t testing.TB, user string) string {
	t.Helper()
	tok, err := usersig.Sign(em.opts.Secret, user, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("token for %q: %v", user, err)
	}
	return tok
}

func (em *embedded) serveWS(w http.ResponseWriter, r *http.Request) {
	em.mu.Lock()
	b := em.b
	em.mu.Unlock()
	if b == nil {
		http.Error(w, "broker stopped", http.StatusServiceUnavailable)
		return
	}
	b.WebSocketHandler().ServeHTTP(w, r)
}

func (em *embedded) start(t testing.TB) {
	t.Helper()
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.b != nil {
		t.Fatal("embedded broker already running")
	}
	var b *broker.Broker
	var err error
	// A restart binds the old port again; a lingering socket may hold it
	// for a moment.
	deadline := time.Now().Add(Timeout)
	for {
		b, err = broker.New(em.opts)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	em.b = b
}

func (em *embedded) stop(t testing.TB) {
	t.Helper()
	em.mu.Lock()
	b := em.b
	em.b = nil
	em.mu.Unlock()
	if b == nil {
		return
	}
	if err := b.Close(); err != nil {
		t.Errorf("stop embedded broker: %v", err)
	}
}
