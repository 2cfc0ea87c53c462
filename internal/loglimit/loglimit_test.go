package loglimit_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/loglimit"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func lines(b *bytes.Buffer) []string         { return strings.Split(strings.TrimSpace(b.String()), "\n") }
func count(b *bytes.Buffer, sub string) int  { return strings.Count(b.String(), sub) }
func textLogger(b *bytes.Buffer, o loglimit.Options) *slog.Logger {
	return slog.New(loglimit.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}), o))
}

// A client's 60 KB message type made 60 KB lines: every string value (and
// errors, and the message) is cut to MaxValue, saying how long it was.
func TestLongValuesAreCut(t *testing.T) {
	var buf bytes.Buffer
	log := textLogger(&buf, loglimit.Options{MaxValue: 100})
	long := strings.Repeat("x", 60<<10)
	log.Warn("message dropped", "from", "mallory", "err", fmt.Errorf("unknown message type %q", long))
	log.Info(long, "payload", []byte(long), slog.Group("g", "v", long))
	log.With("topic", long).Error("access denied")
	for _, l := range lines(&buf) {
		if len(l) > 1000 {
			t.Errorf("a %d-byte line: %.200s…", len(l), l)
		}
	}
	if n := count(&buf, fmt.Sprintf("[%d bytes, cut]", 60<<10)); n < 4 {
		t.Errorf("%d values say they were cut:\n%s", n, buf.String())
	}
	buf.Reset()
	log.Warn("short", "v", "ünïcode", "err", errors.New("fine"))
	if !strings.Contains(buf.String(), `v=ünïcode err=fine`) {
		t.Errorf("short values changed: %s", buf.String())
	}
	// A cut never splits a character.
	buf.Reset()
	textLogger(&buf, loglimit.Options{MaxValue: 5}).Info("m", "v", "aaaaé")
	if !strings.Contains(buf.String(), "v=\"aaaa…[6 bytes, cut]\"") {
		t.Errorf("cut inside a character: %s", buf.String())
	}
}

// One client's flood of warnings is cut to a burst and then one every
// Every, and says how many were dropped; another client's warnings and
// every door-opening record (Info) still get through.
func TestWarningsRateLimitedPerClient(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	log := textLogger(&buf, loglimit.Options{Burst: 5, Every: time.Second, Now: clk.now})
	agent := log.With("component", "agent")
	// 2 s of 10,000 bad messages a second, with a door opening every 100 ms.
	for i := range 20_000 {
		agent.Warn("message dropped", "from", "mallory", "err", "unknown message type")
		if i%1000 == 0 {
			agent.Info("door opened", "by", "alice")
			agent.Warn("message dropped", "from", "alice", "err", "bad version")
		}
		clk.advance(100 * time.Microsecond)
	}
	if n := count(&buf, "door opened"); n != 20 {
		t.Errorf("%d door openings logged, want all 20", n)
	}
	if n := count(&buf, "from=alice"); n < 5 {
		t.Errorf("alice's warnings dropped with mallory's: %d logged", n)
	}
	// The burst, then one a second for 2 s (the refill is continuous).
	if n := count(&buf, "from=mallory"); n < 5 || n > 8 {
		t.Errorf("%d of mallory's 20,000 warnings logged, want the burst of 5 and about one a second", n)
	}
	if count(&buf, "rate_limited=") == 0 {
		t.Error("no record says that limiting starts")
	}
	if count(&buf, "suppressed=") == 0 {
		t.Errorf("no record says how many were dropped:\n%s", buf.String())
	}
	// After a quiet spell the client has its burst again.
	buf.Reset()
	clk.advance(time.Minute)
	for range 5 {
		agent.Warn("message dropped", "from", "mallory", "err", "x")
	}
	if n := count(&buf, "from=mallory"); n != 5 {
		t.Errorf("after a minute's quiet %d of 5 logged", n)
	}
}

// The client may be named by the logger (With) rather than the record; the
// record's own key wins, the one of higher rank among the record's.
func TestClientFromLoggerAttrs(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	log := textLogger(&buf, loglimit.Options{Burst: 2, Every: time.Hour, Now: clk.now})
	a, b := log.With("user", "alice"), log.With("user", "bob")
	for range 10 {
		a.Warn("refused")
		b.Warn("refused")
	}
	if count(&buf, "user=alice") != 2 || count(&buf, "user=bob") != 2 {
		t.Errorf("per-logger clients not kept apart:\n%s", buf.String())
	}
	buf.Reset()
	c := log.With("remote", "10.0.0.1:1234")
	for i := range 10 {
		c.Warn("denied", "user", fmt.Sprintf("u%d", i))
	}
	if n := count(&buf, "msg=denied"); n != 10 {
		t.Errorf("the record's user not used as the client: %d of 10 logged", n)
	}
	buf.Reset()
	for i := range 10 {
		log.With("user", "door").Warn("dropped", "remote", fmt.Sprintf("10.0.0.%d:1", i), "from", fmt.Sprintf("u%d", i))
	}
	if n := count(&buf, "msg=dropped"); n != 10 {
		t.Errorf("the logger's user (the device) taken for the client of records naming theirs: %d of 10 logged", n)
	}
}

// Clients past MaxClients share one budget: rotating names does not get
// past the limit.
func TestManyClientsShareABudget(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	log := textLogger(&buf, loglimit.Options{Burst: 3, Every: time.Hour, MaxClients: 10, Now: clk.now})
	for i := range 100_000 {
		log.Warn("mqtt connection refused", "user", fmt.Sprintf("u%d", i))
	}
	if n := count(&buf, "connection refused"); n > 10*3+3+3 {
		t.Errorf("%d lines from 100,000 clients, want at most MaxClients*Burst plus the shared budget", n)
	}
}

// Below Warn nothing is ever dropped, however many.
func TestInfoNeverDropped(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	log := textLogger(&buf, loglimit.Options{Burst: 1, Every: time.Hour, Now: clk.now})
	for range 1000 {
		log.Info("energised", "output", "door relay")
		log.Debug("effect", "user", "alice")
	}
	if n := count(&buf, "energised"); n != 1000 {
		t.Errorf("%d of 1000 Info records", n)
	}
	if n := count(&buf, "effect"); n != 1000 {
		t.Errorf("%d of 1000 Debug records", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	log := slog.New(loglimit.New(slog.NewTextHandler(io.Discard, nil), loglimit.Options{}))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		log.Warn("message dropped", "from", "mallory", "err", "unknown message type")
	}
}
