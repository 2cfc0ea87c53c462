package web

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// sniffTimeout bounds how long a new connection may take to send its first
// byte.
const sniffTimeout = 10 * time.Second

// Listener serves HTTPS and plain HTTP on one port. A connection whose
// first byte opens a TLS handshake record goes through TLS to Accept, for
// the caller's server; any other is plain HTTP, served by the Listener's own
// small server with the handler given to Listen (the install page, which a
// phone must reach before it trusts the device's certificate, and redirects
// to HTTPS for everything else). It holds at most ServerOptions.MaxConns
// connections of both kinds at once.
type Listener struct {
	ln    net.Listener
	tls   chan net.Conn
	plain chan net.Conn
	done  chan struct{}
	once  sync.Once
	srv   *http.Server
	limit limiter
}

// Listen wraps ln: TLS connections with cfg come out of Accept, plain
// HTTP ones are served with plain until Close, under the bounds of o
// (serve the TLS ones with NewServer and the same o).
func Listen(ln net.Listener, cfg *tls.Config, plain http.Handler, o ServerOptions) *Listener {
	o = o.withDefaults()
	l := &Listener{
		ln:    ln,
		tls:   make(chan net.Conn),
		plain: make(chan net.Conn),
		done:  make(chan struct{}),
		limit: limiter{slots: make(chan struct{}, o.MaxConns), log: o.Log},
	}
	l.srv = NewServer(plain, o)
	go l.acceptLoop(cfg)
	go func() { _ = l.srv.Serve(plainListener{l}) }()
	return l
}

func (l *Listener) acceptLoop(cfg *tls.Config) {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if c, ok := l.limit.take(c); ok {
			go l.sniff(c, cfg)
		}
	}
}

// sniff reads the connection's first byte and hands it on.
func (l *Listener) sniff(c net.Conn, cfg *tls.Config) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	to, conn := l.plain, net.Conn(pc)
	if b[0] == 0x16 { // TLS record type handshake
		to, conn = l.tls, tls.Server(pc, cfg)
	}
	select {
	case to <- conn:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next TLS connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.tls:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening and closes the plain HTTP connections.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		_ = l.srv.Close()
	})
	return err
}

// Addr is the port's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Done is closed when the listener is.
func (l *Listener) Done() <-chan struct{} { return l.done }

type plainListener struct{ l *Listener }

func (p plainListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.l.plain:
		return c, nil
	case <-p.l.done:
		return nil, net.ErrClosed
	}
}

func (p plainListener) Close() error   { return nil }
func (p plainListener) Addr() net.Addr { return p.l.ln.Addr() }

// peekedConn reads through the buffer that holds the sniffed byte.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
