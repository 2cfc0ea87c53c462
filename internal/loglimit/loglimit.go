// Package loglimit keeps what clients send from flooding the log. New wraps
// a slog.Handler so that
//
//   - every string value (and the message) longer than Options.MaxValue is
//     cut, saying how long it was: a client's 60 KB message type makes a
//     short line, not a 60 KB one;
//   - warnings and errors are rate-limited per message and client (the
//     value of the first of Options.ClientKeys the record carries, else
//     its logger): a burst is written, then one every Options.Every, and the
//     next one written says how many were dropped meanwhile.
//
// Records below slog.LevelWarn are never dropped: the door-opening records
// ("door opened", "door open", the relay's "energised") are Info, and must
// stay in the journal whatever a client does.
package loglimit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// Options configure the handler; zero fields take the defaults.
type Options struct {
	// MaxValue is the longest string value or message kept, in bytes
	// (default 512).
	MaxValue int
	// Burst warnings of one message from one client are written before
	// limiting starts (default 10).
	Burst int
	// Every is how often one more is written while limited (default 10 s).
	Every time.Duration
	// MaxClients bounds the clients tracked; past it, the clients not
	// tracked share one budget per message (default 256).
	MaxClients int
	// ClientKeys are the attribute keys that name a client, the first
	// found wins (default user, from, client, remote).
	ClientKeys []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultClientKeys name the client in the daemon's records.
var DefaultClientKeys = []string{"user", "from", "client", "remote"}

func (o *Options) defaults() {
	if o.MaxValue <= 0 {
		o.MaxValue = 512
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 256
	}
	if o.ClientKeys == nil {
		o.ClientKeys = DefaultClientKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// overflow is the client of the records whose client is not tracked.
const overflow = "\x00overflow"

// maxClientKey bounds the part of a client's name used as its key.
const maxClientKey = 128

// New wraps next.
func New(next slog.Handler, o Options) slog.Handler {
	o.defaults()
	return &handler{next: next, lim: &limiter{opts: o, buckets: map[key]*bucket{}}, client: "", clientRank: len(o.ClientKeys)}
}

type handler struct {
	next slog.Handler
	lim  *limiter
	// client named by the logger's own attributes (With), and the rank of
	// its key in ClientKeys (len(ClientKeys): none).
	client     string
	clientRank int
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	limit := h.lim.opts.MaxValue
	out := slog.NewRecord(r.Time, r.Level, cut(r.Message, limit), r.PC)
	// The record's own client key wins over its logger's: the agent's
	// logger names the device (user=door), its records the sender.
	client, rank := "", len(h.lim.opts.ClientKeys)
	r.Attrs(func(a slog.Attr) bool {
		a = truncate(a, limit)
		if i := slices.Index(h.lim.opts.ClientKeys[:rank], a.Key); i >= 0 && a.Value.Kind() == slog.KindString {
			client, rank = a.Value.String(), i
		}
		out.AddAttrs(a)
		return true
	})
	if rank == len(h.lim.opts.ClientKeys) {
		client = h.client
	}
	if r.Level >= slog.LevelWarn {
		ok, dropped, last := h.lim.allow(r.Message, client)
		if !ok {
			return nil
		}
		if dropped > 0 {
			out.AddAttrs(slog.Int64("suppressed", dropped))
		}
		if last {
			out.AddAttrs(slog.String("rate_limited", fmt.Sprintf("more like this from this client: one every %s", h.lim.opts.Every)))
		}
	}
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	cut := make([]slog.Attr, len(as))
	for i, a := range as {
		cut[i] = truncate(a, h.lim.opts.MaxValue)
		if j := slices.Index(h.lim.opts.ClientKeys[:c.clientRank], a.Key); j >= 0 && cut[i].Value.Kind() == slog.KindString {
			c.client, c.clientRank = cut[i].Value.String(), j
		}
	}
	c.next = h.next.WithAttrs(cut)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

// truncate cuts the long strings of a (resolved): strings, errors,
// Stringers and byte slices, in groups too. Other values are written as
// they are.
func truncate(a slog.Attr, limit int) slog.Attr {
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); len(s) > limit {
			a.Value = slog.StringValue(cut(s, limit))
		}
	case slog.KindGroup:
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = truncate(ga, limit)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		case []byte:
			s = string(v)
		default:
			return a
		}
		if len(s) > limit {
			a.Value = slog.StringValue(cut(s, limit))
		}
	}
	return a
}

// cut shortens s to at most limit bytes (at a character boundary), saying
// how long it was.
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s…[%d bytes, cut]", s[:n], len(s))
}

// limiter holds the budgets, shared by every handler derived from one New.
type limiter struct {
	opts Options

	mu      sync.Mutex
	buckets map[key]*bucket
	swept   time.Time
}

type key struct{ msg, client string }

// bucket is a token bucket: tokens refill one every Every, up to Burst.
type bucket struct {
	tokens  float64
	at      time.Time
	dropped int64
}

// allow spends a token of msg from client: whether to write the record,
// how many like it were dropped since the last one written, and whether it
// spent the last token.
func (l *limiter) allow(msg, client string) (ok bool, dropped int64, last bool) {
	if len(client) > maxClientKey {
		client = client[:maxClientKey]
	}
	if len(msg) > maxClientKey {
		msg = msg[:maxClientKey]
	}
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{msg, client}
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= l.opts.MaxClients {
			l.sweep(now)
		}
		if len(l.buckets) >= l.opts.MaxClients {
			k.client = overflow
			b = l.buckets[k]
		}
		if b == nil {
			b = &bucket{tokens: float64(l.opts.Burst), at: now}
			l.buckets[k] = b
		}
	}
	b.refill(now, l.opts)
	if b.tokens < 1 {
		b.dropped++
		return false, 0, false
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped, b.tokens < 1
}

func (b *bucket) refill(now time.Time, o Options) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(float64(o.Burst), b.tokens+float64(el)/float64(o.Every))
		b.at = now
	}
}

// sweep forgets the buckets that are full again and dropped nothing (at
// most once every Every; the overflow buckets stay).
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.opts.Every {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		b.refill(now, l.opts)
		if k.client != overflow && b.dropped == 0 && b.tokens >= float64(l.opts.Burst) {
			delete(l.buckets, k)
		}
	}
}
