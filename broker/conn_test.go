package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/leaktest"
)

// Writes to a peer that does not read return at once until MaxPendingWrite
// is passed; then the connection is closed.
func TestWriteBufferNeverBlocks(t *testing.T) {
	leaktest.Check(t)
	a, b := net.Pipe() // unbuffered: every write waits for a read
	defer b.Close()
	w := newWriteBuffer(a)
	defer w.Close()
	chunk := make([]byte, 16<<10)
	done := make(chan error, 1)
	go func() {
		for range 2 * MaxPendingWrite / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errNotReading) || !errors.Is(w.failure(), errNotReading) {
			t.Fatalf("write past the limit: %v (failure %v), want errNotReading", err, w.failure())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a peer that does not read")
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatalf("connection not closed after the overflow: %v", err)
	}
}

// What was written before Close reaches the peer (a refusal's CONNACK),
// then the connection closes; a read blocked at Close returns at once.
func TestWriteBufferFlushesOnClose(t *testing.T) {
	leaktest.Check(t)
	a, b := net.Pipe()
	defer b.Close()
	w := newWriteBuffer(a)
	read := make(chan error, 1)
	go func() {
		_, err := w.Read(make([]byte, 1))
		read <- err
	}()
	msg := []byte("connack")
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("read returned no error after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still blocked after Close")
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("peer got %q, %v; want %q then EOF", got, err, msg)
	}
}
