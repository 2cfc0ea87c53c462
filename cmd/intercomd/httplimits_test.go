package main

import (
	"errors"
	"net"
	"regexp"
	"testing"
	"time"
)

// httpsAddr is where the daemon serves HTTPS.
func (d *daemonUnderTest) httpsAddr(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`msg=https listen=(\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatal("the daemon did not say where it serves HTTPS")
	}
	return m[1]
}

// http.max_connections bounds what the HTTP port holds: past it a new
// connection is closed at once, and the refusal is logged.
func TestDaemonHTTPConnectionLimit(t *testing.T) {
	d := startDaemon(t, "http:\n  listen: 127.0.0.1:0\n  max_connections: 8\n")
	addr := d.httpsAddr(t)
	for range 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // the held ones are closed after 10 s
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the ninth connection was not closed at once: %v", err)
	}
	d.stderr.waitFor(t, "http connection refused", 5*time.Second)
}
