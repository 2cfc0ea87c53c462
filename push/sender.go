package push

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// Channels, as the Observer and the metrics name them.
const (
	ChannelWebPush = "webpush"
	ChannelNtfy    = "ntfy"
)

// Failure reasons, as the Observer and the metrics name them.
const (
	ReasonTimeout     = "timeout"      // no answer within the request timeout
	ReasonUnreachable = "unreachable"  // DNS, connection or TLS failure: no internet?
	ReasonGone        = "gone"         // 404/410: the subscription is gone (and dropped)
	ReasonTooLarge    = "too_large"    // 413
	ReasonRateLimited = "rate_limited" // 429
	ReasonServer      = "server_error" // 5xx
	ReasonRefused     = "refused"      // another 4xx, such as 403 for a VAPID token refused
	ReasonBadKey      = "bad_key"      // the subscription's keys cannot be used (dropped)
	ReasonBackoff     = "backoff"      // not attempted: the service asked us to wait
	ReasonQueueFull   = "queue_full"   // not attempted: too much queued already
)

// Observer is told about every push; the daemon exports it as metrics. Its
// methods are called from the workers and must not block.
type Observer interface {
	// Attempt: a request is about to be made on channel.
	Attempt(channel string)
	// Failure: a push on channel failed (or was not attempted) for reason.
	Failure(channel, reason string)
	// Accepted: the push service accepted a push, elapsed after the
	// message's Since (the ring's start).
	Accepted(channel string, elapsed time.Duration)
}

type nopObserver struct{}

func (nopObserver) Attempt(string)                 {}
func (nopObserver) Failure(string, string)         {}
func (nopObserver) Accepted(string, time.Duration) {}

// SenderOptions configures a Sender.
type SenderOptions struct {
	Keys Keys
	// Contact is the VAPID "sub": a mailto: or https: URL where the push
	// services can reach the device's owner. Apple refuses a missing one.
	Contact string
	Store   *Store
	// Client makes the requests; nil means one of the Sender's own.
	Client *http.Client
	// Timeout bounds one request to a push service (default 10 s).
	Timeout time.Duration
	// Workers is how many requests may be under way at once (default 4).
	Workers int
	// Queue bounds the pushes waiting for a worker (default 64).
	Queue    int
	Logger   *slog.Logger
	Observer Observer
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Message is one push to every subscription of User.
type Message struct {
	User    string
	Payload []byte
	// TTL is how long the push service may keep the message for an
	// unreachable phone: no longer than the ring lasts.
	TTL time.Duration
	// Topic, when set, replaces an undelivered message of the same topic
	// at the push service (RFC 8030 section 5.4): at most 32 base64url
	// characters.
	Topic string
	// Since is when the ring began, for Observer.Accepted.
	Since time.Time
}

// maxPayload is the largest payload that fits one aes128gcm record of
// 4096 bytes (RFC 8291 section 4: 4096 - 86 header - 16 tag - 1 delimiter).
const maxPayload = 3993

// Sender delivers Messages; see the package documentation.
type Sender struct {
	opts SenderOptions
	worker
}

// NewSender starts the workers of a Sender. Close stops them.
func NewSender(opts SenderOptions) *Sender {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	if opts.Client == nil {
		opts.Client = newClient(opts.Workers)
	}
	s := &Sender{worker: newWorker(&opts.Timeout, &opts.Now, opts.Logger, opts.Observer, opts.Workers, opts.Queue)}
	s.opts = opts
	return s
}

// newClient keeps connections to the push services open between rings, so
// that a ring costs no TCP and TLS handshake.
func newClient(workers int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = workers
	t.MaxConnsPerHost = workers
	t.IdleConnTimeout = 10 * time.Minute
	t.ResponseHeaderTimeout = 10 * time.Second
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Send queues msg for every subscription of msg.User and returns at once.
// It reports how many pushes were queued.
func (s *Sender) Send(msg Message) int {
	subs := s.opts.Store.User(msg.User)
	if len(msg.Payload) > maxPayload {
		for range subs {
			s.obs.Failure(ChannelWebPush, ReasonTooLarge)
		}
		s.limit.failed(ChannelWebPush, "payload", ReasonTooLarge, "payload of "+strconv.Itoa(len(msg.Payload))+" bytes", 0, s.opts.Now())
		return 0
	}
	n := 0
	for _, sub := range subs {
		if s.pool.submit(func(ctx context.Context) { s.deliver(ctx, sub, msg) }) {
			n++
			continue
		}
		s.obs.Failure(ChannelWebPush, ReasonQueueFull)
		s.limit.failed(ChannelWebPush, "queue", ReasonQueueFull, "too many pushes queued", 0, s.opts.Now())
	}
	return n
}

// Close stops accepting pushes and waits for those under way (each bounded
// by the request timeout); pushes still queued are dropped.
func (s *Sender) Close() { s.pool.close() }

func (s *Sender) deliver(ctx context.Context, sub Subscription, msg Message) {
	origin := originOf(sub.Endpoint)
	now := s.opts.Now()
	if !s.limit.allow(origin, now) {
		s.obs.Failure(ChannelWebPush, ReasonBackoff)
		return
	}
	s.obs.Attempt(ChannelWebPush)
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	resp, err := webpush.SendNotificationWithContext(ctx, msg.Payload, &webpush.Subscription{
		Endpoint: sub.Endpoint,
		Keys:     webpush.Keys{P256dh: sub.P256dh, Auth: sub.Auth},
	}, &webpush.Options{
		HTTPClient:      s.opts.Client,
		Subscriber:      strings.TrimPrefix(s.opts.Contact, "mailto:"),
		Topic:           msg.Topic,
		TTL:             max(int(msg.TTL/time.Second), 0),
		Urgency:         webpush.UrgencyHigh,
		VAPIDPublicKey:  s.opts.Keys.Public,
		VAPIDPrivateKey: s.opts.Keys.Private,
	})
	reason, detail, retry := classify(ctx, resp, err, now)
	if reason == "" {
		s.obs.Accepted(ChannelWebPush, s.opts.Now().Sub(msg.Since))
		s.limit.succeeded(ChannelWebPush, origin)
		return
	}
	// The observer last: whoever it tells (metrics, a test) sees the
	// failure fully recorded, back-off and log line included.
	defer s.obs.Failure(ChannelWebPush, reason)
	if reason == ReasonGone || reason == ReasonBadKey {
		if _, err := s.opts.Store.RemoveEndpoint(sub.Endpoint); err != nil {
			s.log.Warn("drop push subscription", "err", err)
		}
		s.log.Info("push subscription dropped", "user", sub.User, "device", sub.Device, "reason", reason, "detail", detail)
		return
	}
	s.limit.failed(ChannelWebPush, origin, reason, detail, retry, s.opts.Now())
}

// classify maps a push service's answer to a failure reason ("" for
// accepted), a detail for the log and the Retry-After it asked for.
func classify(ctx context.Context, resp *http.Response, err error, now time.Time) (reason, detail string, retry time.Duration) {
	if err != nil {
		var nerr net.Error
		var uerr *url.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &nerr) && nerr.Timeout()):
			return ReasonTimeout, err.Error(), 0
		case errors.As(err, &uerr):
			return ReasonUnreachable, err.Error(), 0
		default:
			// Everything webpush-go fails before making a request: the
			// subscription's keys.
			return ReasonBadKey, err.Error(), 0
		}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	detail = resp.Status
	if b := strings.TrimSpace(strings.ToValidUTF8(string(body), "?")); b != "" {
		detail += ": " + b
	}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return "", "", 0
	case c == http.StatusNotFound || c == http.StatusGone:
		return ReasonGone, detail, 0
	case c == http.StatusRequestEntityTooLarge:
		return ReasonTooLarge, detail, 0
	case c == http.StatusTooManyRequests:
		return ReasonRateLimited, detail, retryAfter(resp.Header.Get("Retry-After"), now)
	case c >= 500:
		return ReasonServer, detail, retryAfter(resp.Header.Get("Retry-After"), now)
	default:
		return ReasonRefused, detail, 0
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return t.Sub(now)
	}
	return 0
}

func originOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return u.Scheme + "://" + u.Host
}
