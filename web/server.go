package web

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/intercomd/intercomd/config"
)

// ServerOptions bound what the clients of the HTTP port can hold: every
// connection is closed once idle or slow, and there are at most MaxConns
// at once. Zero fields take the defaults.
//
// MQTT over WebSocket is not cut by ReadTimeout and WriteTimeout: they
// bound a request, and a hijacked connection (the WebSocket upgrade) has
// its deadlines cleared by net/http's Hijack (and again by gorilla's
// Upgrade). TestWebSocketOutlivesTimeouts holds both to it.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's header (10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (30 s).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (2 min: the 1.2 MB calling
	// core over weak Wi-Fi).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long (1 min).
	IdleTimeout time.Duration
	// MaxConns bounds the connections held at once, HTTPS and plain HTTP
	// together; past it a new one is closed at once
	// (config.DefaultMaxConnections).
	MaxConns int
	// Log receives the servers' errors and refusals (nil discards).
	Log *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, sniffTimeout)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 2*time.Minute)
	def(&o.IdleTimeout, time.Minute)
	if o.MaxConns <= 0 {
		o.MaxConns = config.DefaultMaxConnections
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// NewServer returns an HTTP server of h with the timeouts of o; its
// errors go to o.Log (a failed TLS handshake, which any scanner causes, at
// Debug).
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	o = o.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(serverLog{o.Log}, "", 0),
	}
}

// serverLog writes net/http's error lines to a slog.Logger.
type serverLog struct{ log *slog.Logger }

func (s serverLog) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	level := slog.LevelWarn
	if bytes.Contains(p, []byte("TLS handshake error")) {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "http server", "err", msg)
	return len(p), nil
}

// limiter holds the slots of MaxConns.
type limiter struct {
	slots chan struct{}
	log   *slog.Logger
}

// take counts c, or closes it when every slot is taken.
func (l *limiter) take(c net.Conn) (net.Conn, bool) {
	select {
	case l.slots <- struct{}{}:
		return &countedConn{Conn: c, release: func() { <-l.slots }}, true
	default:
		c.Close()
		l.log.Warn("http connection refused: the port holds http.max_connections already", "max_connections", cap(l.slots))
		return nil, false
	}
}

// countedConn gives its slot back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Secure adds the headers every HTTPS response carries: HSTS (a year, this
// host alone: a phone that trusts the device's certificate never speaks
// plain HTTP to it again), X-Frame-Options DENY (nothing frames the app)
// and nosniff. The pages set their own Content-Security-Policy.
func Secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}
