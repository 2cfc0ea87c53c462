package push

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/intercomd/intercomd/push/pushtest"
)

// recorder counts what the Sender tells its Observer and keeps the
// Authorization headers it sent.
type recorder struct {
	mu       sync.Mutex
	attempts int
	failures map[string]int
	accepted []time.Duration
	done     chan struct{}
}

func newRecorder() *recorder {
	return &recorder{failures: map[string]int{}, done: make(chan struct{}, 100)}
}

func (r *recorder) Attempt(string) { r.mu.Lock(); r.attempts++; r.mu.Unlock() }
func (r *recorder) Failure(_, reason string) {
	r.mu.Lock()
	r.failures[reason]++
	r.mu.Unlock()
	r.done <- struct{}{}
}
func (r *recorder) Accepted(_ string, d time.Duration) {
	r.mu.Lock()
	r.accepted = append(r.accepted, d)
	r.mu.Unlock()
	r.done <- struct{}{}
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("push outcome not reported")
		}
	}
}

func (r *recorder) failed(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures[reason]
}

type authCapture struct {
	mu   sync.Mutex
	auth []string
	rt   http.RoundTripper
}

func (a *authCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.auth = append(a.auth, req.Header.Get("Authorization")+"|"+req.Header.Get("Urgency")+"|"+req.Header.Get("TTL"))
	a.mu.Unlock()
	return a.rt.RoundTrip(req)
}

func testKeys(t *testing.T) Keys {
	t.Helper()
	k, err := LoadOrCreateKeys(filepath.Join(t.TempDir(), "vapid.json"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testLog(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf.b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestSenderDeliversToPushService sends to two devices of a user through a
// real push service, which checks the VAPID signature and decrypts the
// payload (RFC 8291) with each subscription's keys; the test checks the
// VAPID token's claims (RFC 8292: aud, exp, sub), Urgency and TTL, and that
// an expired subscription (410) is dropped.
func TestSenderDeliversToPushService(t *testing.T) {
	ps := pushtest.Start(t)
	keys := testKeys(t)
	store, err := OpenStore(StoreOptions{Path: filepath.Join(t.TempDir(), "subs.json"), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	subs := []pushtest.Sub{ps.Subscribe(t, keys.Public), ps.Subscribe(t, keys.Public)}
	for i, s := range subs {
		err := store.Add(Subscription{User: "alice", Device: fmt.Sprint("device", i), Endpoint: s.Endpoint, P256dh: s.Keys.P256dh, Auth: s.Keys.Auth}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	capt := &authCapture{rt: http.DefaultTransport}
	rec := newRecorder()
	s := NewSender(SenderOptions{Keys: keys, Contact: "mailto:owner@example.org", Store: store,
		Client: &http.Client{Transport: capt}, Observer: rec})
	defer s.Close()

	payload := `{"v":1,"type":"ring","call":"c1","from":"door","title":"Front door"}`
	if n := s.Send(Message{User: "alice", Payload: []byte(payload), TTL: 30 * time.Second, Topic: "c1", Since: time.Now()}); n != 2 {
		t.Fatalf("queued %d pushes, want 2", n)
	}
	rec.wait(t, 2)
	if len(rec.accepted) != 2 {
		t.Fatalf("accepted %d, failures %v", len(rec.accepted), rec.failures)
	}
	for _, sub := range subs {
		got := ps.Messages(t, sub)
		if len(got) != 1 || got[0] != payload {
			t.Fatalf("push service decrypted %q, want [%s]", got, payload)
		}
	}
	for _, h := range capt.auth {
		checkVAPID(t, h, keys, ps.Base)
	}

	reopened, err := OpenStore(StoreOptions{Path: store.opts.Path, Insecure: true})
	if err != nil || reopened.Len() != 2 {
		t.Fatalf("after a restart: %d subscriptions, %v", reopened.Len(), err)
	}
}

// checkVAPID verifies the token of an Authorization header "vapid t=..., k=..."
// with the device's public key and checks its claims.
func checkVAPID(t *testing.T, h string, keys Keys, origin string) {
	t.Helper()
	parts := strings.Split(h, "|")
	auth, urgency, ttl := parts[0], parts[1], parts[2]
	if urgency != "high" || ttl != "30" {
		t.Errorf("Urgency %q TTL %q, want high and 30", urgency, ttl)
	}
	tok, k, ok := strings.Cut(strings.TrimPrefix(auth, "vapid t="), ", k=")
	if !ok || k != keys.Public {
		t.Fatalf("Authorization %q does not carry the device's key", auth)
	}
	pub, _ := decodeKey(keys.Public)
	x, y := elliptic.Unmarshal(elliptic.P256(), pub) //nolint:staticcheck // the key's point, for jwt
	key := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Set(x), Y: new(big.Int).Set(y)}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(origin), jwt.WithExpirationRequired()); err != nil {
		t.Fatalf("VAPID token: %v", err)
	}
	if claims["sub"] != "mailto:owner@example.org" {
		t.Errorf("sub %v", claims["sub"])
	}
	exp, _ := claims.GetExpirationTime()
	if d := time.Until(exp.Time); d <= 0 || d > 24*time.Hour {
		t.Errorf("exp in %v, want within 24 h (RFC 8292 section 2)", d)
	}
}

// failingService answers every push with status (and Retry-After), or
// hangs until released.
func failingService(t *testing.T, status int, retryAfter string, hang chan struct{}) (*httptest.Server, *int) {
	var mu sync.Mutex
	n := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*n++
		mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, n
}

func browserKeys(t *testing.T) (string, string) {
	t.Helper()
	k := testKeys(t) // any P-256 point will do as the browser's key
	return k.Public, "AAAAAAAAAAAAAAAAAAAAAA"
}

func TestSenderFailures(t *testing.T) {
	p256dh, auth := browserKeys(t)
	cases := []struct {
		name       string
		status     int
		retryAfter string
		hang       bool
		reason     string
		backoff    bool // a second ring is not attempted
		dropped    bool
	}{
		{name: "too large", status: 413, reason: ReasonTooLarge},
		{name: "rate limited", status: 429, retryAfter: "120", reason: ReasonRateLimited, backoff: true},
		{name: "server error", status: 503, reason: ReasonServer, backoff: true},
		{name: "internal error", status: 500, reason: ReasonServer, backoff: true},
		{name: "forbidden", status: 403, reason: ReasonRefused},
		{name: "not found", status: 404, reason: ReasonGone, dropped: true},
		{name: "unsubscribed", status: 410, reason: ReasonGone, dropped: true},
		{name: "hangs", hang: true, reason: ReasonTimeout, backoff: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hang chan struct{}
			if c.hang {
				hang = make(chan struct{})
				defer close(hang)
			}
			srv, hits := failingService(t, c.status, c.retryAfter, hang)
			store, _ := OpenStore(StoreOptions{Insecure: true})
			if err := store.Add(Subscription{User: "bob", Device: "d1", Endpoint: srv.URL + "/push/1", P256dh: p256dh, Auth: auth}, time.Now()); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			log, buf := testLog(t)
			s := NewSender(SenderOptions{Keys: testKeys(t), Contact: "mailto:o@example.org", Store: store,
				Observer: rec, Timeout: 300 * time.Millisecond, Logger: log})
			defer s.Close()
			start := time.Now()
			if n := s.Send(Message{User: "bob", Payload: []byte(`{}`), TTL: time.Minute, Since: start}); n != 1 {
				t.Fatalf("queued %d", n)
			}
			if time.Since(start) > 50*time.Millisecond {
				t.Errorf("Send blocked for %v", time.Since(start))
			}
			rec.wait(t, 1)
			if rec.failed(c.reason) != 1 {
				t.Fatalf("failures %v, want %s", rec.failures, c.reason)
			}
			if (store.Len() == 0) != c.dropped {
				t.Fatalf("subscriptions left %d, dropped want %v", store.Len(), c.dropped)
			}
			if c.dropped {
				return
			}
			s.Send(Message{User: "bob", Payload: []byte(`{}`), TTL: time.Minute, Since: time.Now()})
			rec.wait(t, 1)
			if c.backoff {
				if rec.failed(ReasonBackoff) != 1 || *hits != 1 {
					t.Fatalf("second ring: failures %v, %d requests; want no second request", rec.failures, *hits)
				}
			} else if *hits != 2 {
				t.Fatalf("second ring: %d requests, want 2", *hits)
			}
			if n := strings.Count(buf.String(), "push failed"); n != 1 {
				t.Errorf("logged %d failures, want the reason once:\n%s", n, buf.String())
			}
		})
	}
}

func TestSenderUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p256dh, auth := browserKeys(t)
	store, _ := OpenStore(StoreOptions{Insecure: true})
	_ = store.Add(Subscription{User: "bob", Device: "d1", Endpoint: "http://" + addr + "/p", P256dh: p256dh, Auth: auth}, time.Now())
	rec := newRecorder()
	s := NewSender(SenderOptions{Keys: testKeys(t), Contact: "mailto:o@example.org", Store: store, Observer: rec})
	defer s.Close()
	s.Send(Message{User: "bob", Payload: []byte(`{}`), TTL: time.Minute, Since: time.Now()})
	rec.wait(t, 1)
	if rec.failed(ReasonUnreachable) != 1 || store.Len() != 1 {
		t.Fatalf("failures %v, %d subscriptions", rec.failures, store.Len())
	}
}

func TestStoreRefusesBadSubscriptions(t *testing.T) {
	p256dh, auth := browserKeys(t)
	good := Subscription{User: "bob", Device: "d1", Endpoint: "https://fcm.googleapis.com/fcm/send/abc", P256dh: p256dh, Auth: auth}
	store, _ := OpenStore(StoreOptions{})
	if err := store.Add(good, time.Now()); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Subscription){
		"key not on the curve": func(s *Subscription) {
			s.P256dh = "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		},
		"key not base64": func(s *Subscription) { s.P256dh = "!!" },
		"short auth":     func(s *Subscription) { s.Auth = "AAAA" },
		"http endpoint":  func(s *Subscription) { s.Endpoint = "http://fcm.googleapis.com/x" },
		"unknown host":   func(s *Subscription) { s.Endpoint = "https://192.168.1.1/x" },
		"lookalike host": func(s *Subscription) { s.Endpoint = "https://evilfcm.googleapis.com.example/x" },
		"bad device":     func(s *Subscription) { s.Device = "a/b" },
	}
	for name, mutate := range bad {
		s := good
		s.Device = "d2"
		mutate(&s)
		if err := store.Add(s, time.Now()); err == nil || !strings.Contains(err.Error(), "bad subscription") {
			t.Errorf("%s: Add = %v", name, err)
		}
	}
	// Bounded per user: the ninth device replaces the oldest.
	for i := range MaxPerUser + 1 {
		s := good
		s.Device = fmt.Sprintf("dev%d", i)
		s.Endpoint = fmt.Sprintf("https://fcm.googleapis.com/fcm/send/%d", i)
		if err := store.Add(s, time.Now().Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(store.User("bob")); n != MaxPerUser {
		t.Fatalf("bob has %d subscriptions, want %d", n, MaxPerUser)
	}
	b, _ := json.Marshal(store.User("bob"))
	if strings.Contains(string(b), `"d1"`) {
		t.Errorf("the oldest device was kept: %s", b)
	}
}
