package broker

import (
	"errors"
	"net"
	"sync"
	"time"
)

// MaxPendingWrite bounds the bytes written to one client that its socket
// has not taken yet. A client that falls further behind (it stopped
// reading) is disconnected.
const MaxPendingWrite = 256 << 10

// flushTimeout bounds how long a closed connection may take to receive what
// was written to it before (a refusal's CONNACK, for example).
const flushTimeout = 2 * time.Second

// errNotReading: the client stopped reading, and what is written to it
// passed MaxPendingWrite.
var errNotReading = errors.New("client not reading: pending writes past the limit")

// writeBuffer is the connection mochi sees: its Write never blocks but
// appends to a buffer that a goroutine of its own writes to the network.
// mochi writes to a client while holding that client's lock, which every
// publisher delivering to the client takes too; with blocking writes, one
// client that stops reading (or whose network went away) would hold up every
// publisher of a topic it subscribes to, everybody's presence for one, until
// its keep-alive runs out. When the buffer would pass MaxPendingWrite the
// connection is closed instead.
//
// Close stops reads at once and closes the network connection once the
// buffer is written, within flushTimeout.
type writeBuffer struct {
	net.Conn

	mu      sync.Mutex
	ready   sync.Cond // pending, err or closing changed
	pending []byte
	err     error // why writing stopped; Write returns it
	closing bool
}

func newWriteBuffer(c net.Conn) *writeBuffer {
	w := &writeBuffer{Conn: c}
	w.ready.L = &w.mu
	go w.run()
	return w
}

func (w *writeBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return 0, w.err
	case w.closing:
		return 0, net.ErrClosed
	case len(w.pending)+len(p) > MaxPendingWrite:
		w.err = errNotReading
		w.ready.Signal()
		_ = w.Conn.Close() // the reader and the writer stop at once
		return 0, w.err
	}
	w.pending = append(w.pending, p...)
	w.ready.Signal()
	return len(p), nil
}

// run writes the buffer out until Close or an error, then closes the
// network connection.
func (w *writeBuffer) run() {
	defer w.Conn.Close()
	var out []byte
	for {
		w.mu.Lock()
		for len(w.pending) == 0 && w.err == nil && !w.closing {
			w.ready.Wait()
		}
		if w.err != nil || len(w.pending) == 0 {
			w.mu.Unlock()
			return // an error, or closed with nothing left to write
		}
		out, w.pending = w.pending, out[:0]
		w.mu.Unlock()
		if _, err := w.Conn.Write(out); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
			return
		}
	}
}

// failure returns why writing stopped, or nil.
func (w *writeBuffer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops reads at once and lets the writer finish within flushTimeout.
func (w *writeBuffer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return nil
	}
	w.closing = true
	_ = w.Conn.SetReadDeadline(time.Now())
	_ = w.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	w.ready.Signal()
	return nil
}

// SetDeadline sets the read deadline, and the write deadline unless the
// connection is closing (its flush keeps flushTimeout).
func (w *writeBuffer) SetDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return nil
	}
	return w.Conn.SetDeadline(t)
}
