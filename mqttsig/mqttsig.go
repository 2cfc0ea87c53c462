// Package mqttsig is intercomd's signaling transport: it carries opaque
// payloads between users over MQTT (paho.mqtt.golang), with the embedded
// broker of package broker or with Mosquitto, EMQX and the like.
//
// A Client is connected as one user (client ID "<user>-<session>") and
// receives its direct messages, the broadcasts of its groups and everyone's
// presence, following the layout of package topic. The sender of every inbound
// message is read from the topic, which the broker's access rule ties to the
// authenticated publisher; payloads are never trusted for identity. Payloads
// above MaxPayload are refused by Send and dropped (with a log line) on
// receipt. Group broadcasts the client itself sent are not delivered back.
//
// Presence: on every connect the client publishes a retained "online"
// (PresenceInfo JSON) on its presence topic; its last will, kept by the broker,
// turns it "offline" if the connection dies; Close publishes "offline" before
// a clean disconnect.
//
// Concurrency: Dial returns at once and the client connects, reconnects and
// resubscribes in the background for its whole life. paho's callbacks never
// block: they copy each message into the buffered Inbound channel (dropping it
// with a log line when the consumer has fallen that far behind) and update the
// link state reported on Status. Messages are handed over in arrival order.
// Send and SendGroup may be called from any goroutine; they wait at most
// Options.SendTimeout for the broker's acknowledgement and fail at once when
// the link is down. Close ends everything and closes both channels.
package mqttsig

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/intercomd/intercomd/internal/ids"
	"github.com/intercomd/intercomd/mqttsig/topic"
	"github.com/intercomd/intercomd/usersig"
)

// MaxPayload is the largest signaling payload, in bytes.
const MaxPayload = 64 << 10

// Kind tells what an Inbound message is.
type Kind = topic.Kind

// Kinds of inbound message.
const (
	Direct   = topic.Direct   // sent to this user alone
	Group    = topic.Group    // broadcast to one of this user's groups
	Presence = topic.Presence // a user's presence changed (payload: PresenceInfo JSON)
)

// Errors returned (wrapped) by Send, SendGroup and Dial.
var (
	ErrNotConnected = errors.New("mqttsig: not connected to the broker")
	ErrTooLarge     = errors.New("mqttsig: payload larger than 64 KiB")
	ErrTimeout      = errors.New("mqttsig: broker did not acknowledge in time")
	ErrClosed       = errors.New("mqttsig: client closed")
	ErrBadID        = errors.New("mqttsig: invalid user or group id")
	ErrNotMember    = errors.New("mqttsig: not a member of the group")
)

// Options configures a Client.
type Options struct {
	// Brokers are the broker URLs, tried in order: tcp://host:1883,
	// ssl://host:8883, ws://host/mqtt, wss://host/mqtt.
	Brokers []string
	// TLSConfig is used for ssl:// and wss:// brokers; CAFile, CertFile and
	// KeyFile, when set, are loaded on top of it (or of an empty config).
	TLSConfig *tls.Config
	// CAFile is a PEM bundle of the CAs to trust instead of the system pool.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key.
	CertFile, KeyFile string
	// User is this client's user ID. Required.
	User string
	// Username defaults to User; Password is the token (embedded broker) or
	// the broker password.
	Username, Password string
	// Session distinguishes this client from other clients of the same user;
	// "" picks a random one.
	Session string
	// Groups are the groups this user belongs to: their broadcasts are
	// received and SendGroup may address them.
	Groups []string
	// Prefix is the topic prefix; "" means topic.DefaultPrefix.
	Prefix string
	// Logger receives link changes and dropped messages; nil discards them.
	Logger *slog.Logger
	// InboundBuffer is the capacity of the Inbound channel; 0 means 256.
	InboundBuffer int
	// SendTimeout bounds how long Send waits for the broker; 0 means 2 s.
	SendTimeout time.Duration
	// ConnectTimeout bounds one connection attempt; 0 means 10 s.
	ConnectTimeout time.Duration
	// KeepAlive is the MQTT keepalive; 0 means 30 s.
	KeepAlive time.Duration
	// RetryInterval is the wait between first connection attempts and the
	// first reconnect delay; 0 means 1 s.
	RetryInterval time.Duration
	// MaxRetryInterval caps the reconnect back-off; 0 means 10 s.
	MaxRetryInterval time.Duration
	// OnRefused, when set, is called (on paho's goroutine; it must not
	// block) each time the broker refuses the credentials: a bad user name
	// or password, or not authorised. The error wraps ErrRefused. The
	// client keeps retrying; a program that cannot get a new token should
	// stop, since the same token will be refused again.
	OnRefused func(error)
}

// ErrRefused is wrapped by the errors passed to Options.OnRefused.
var ErrRefused = errors.New("broker refused the credentials")

// Inbound is a message received from another user.
type Inbound struct {
	Kind Kind
	// From is the sender (Direct, Group) or the user whose presence this is
	// (Presence), as established by the broker.
	From string
	// Group is the group of a Group broadcast.
	Group string
	// Payload is the message body, owned by the receiver. A Presence message
	// with an empty payload means the presence was cleared.
	Payload []byte
	// Retained is true for a presence stored by the broker before this client
	// subscribed, rather than a live change.
	Retained bool
}

// PresenceInfo is the JSON body of presence messages.
type PresenceInfo struct {
	V        int    `json:"v"`
	State    string `json:"state"` // PresenceOnline or PresenceOffline
	Session  string `json:"session"`
	Versions []int  `json:"versions"` // signaling protocol versions spoken
}

// Presence states.
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
)

// ParsePresence decodes and checks a presence payload. An empty payload is
// a cleared retained presence and means offline (docs/protocol.md §5).
func ParsePresence(payload []byte) (PresenceInfo, error) {
	var p PresenceInfo
	if len(payload) == 0 {
		return PresenceInfo{V: 1, State: PresenceOffline}, nil
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return PresenceInfo{}, fmt.Errorf("parse presence: %w", err)
	}
	if p.V != 1 || (p.State != PresenceOnline && p.State != PresenceOffline) {
		return PresenceInfo{}, fmt.Errorf("parse presence: version %d state %q not understood", p.V, p.State)
	}
	return p, nil
}

// Client is a signaling connection for one user. Create it with Dial.
type Client struct {
	opts   Options
	log    *slog.Logger
	layout topic.Layout
	pc     paho.Client
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	inMu     sync.RWMutex // guards sending on in against its closing
	in       chan Inbound
	inClosed bool

	stMu      sync.Mutex
	gen       uint64 // connection generation, bumped on connect and loss
	connected bool
	changed   chan struct{} // closed and replaced on every state change
	status    chan bool     // capacity 1, latest state wins
	closed    bool          // set at the start of Close

	failures atomic.Int64 // failed attempts since the last connect
	dropMu   sync.Mutex
	dropped  int
	dropLog  time.Time

	closeOnce sync.Once
	closeErr  error
}

// Dial validates opts and starts connecting in the background. It returns at
// once; use Status or WaitConnected to learn when the link is up. ctx only
// bounds the setup (reading TLS files), not the client's life.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mqttsig dial: %w", err)
	}
	if !usersig.ValidID(opts.User) {
		return nil, fmt.Errorf("mqttsig dial: user %q: %w", opts.User, ErrBadID)
	}
	if opts.Session == "" {
		opts.Session = ids.New()
	}
	if !usersig.ValidID(opts.Session) {
		return nil, fmt.Errorf("mqttsig dial: session %q: %w", opts.Session, ErrBadID)
	}
	for _, g := range opts.Groups {
		if !usersig.ValidID(g) {
			return nil, fmt.Errorf("mqttsig dial: group %q: %w", g, ErrBadID)
		}
	}
	opts.Groups = slices.Clone(opts.Groups)
	if len(opts.Brokers) == 0 {
		return nil, errors.New("mqttsig dial: no broker url")
	}
	layout, err := topic.New(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("mqttsig dial: %w", err)
	}
	if opts.Username == "" {
		opts.Username = opts.User
	}
	setDefault(&opts.SendTimeout, 2*time.Second)
	setDefault(&opts.ConnectTimeout, 10*time.Second)
	setDefault(&opts.KeepAlive, 30*time.Second)
	setDefault(&opts.RetryInterval, time.Second)
	setDefault(&opts.MaxRetryInterval, 10*time.Second)
	if opts.InboundBuffer <= 0 {
		opts.InboundBuffer = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsConfig, err := buildTLS(opts)
	if err != nil {
		return nil, fmt.Errorf("mqttsig dial: %w", err)
	}

	c := &Client{
		opts:    opts,
		log:     log.With("component", "mqtt", "user", opts.User, "session", opts.Session),
		layout:  layout,
		done:    make(chan struct{}),
		in:      make(chan Inbound, opts.InboundBuffer),
		changed: make(chan struct{}),
		status:  make(chan bool, 1),
	}

	offline, err := c.presence(PresenceOffline)
	if err != nil {
		return nil, fmt.Errorf("mqttsig dial: %w", err)
	}
	po := paho.NewClientOptions()
	for _, b := range opts.Brokers {
		if _, err := url.Parse(b); err != nil {
			return nil, fmt.Errorf("mqttsig dial: broker url %q: %w", b, err)
		}
		po.AddBroker(b)
	}
	po.SetClientID(opts.User + "." + opts.Session) // "." is in no ID: unambiguous
	po.SetUsername(opts.Username)
	po.SetPassword(opts.Password)
	po.SetProtocolVersion(4) // MQTT 3.1.1, spoken by every broker we target
	po.SetTLSConfig(tlsConfig)
	po.SetCleanSession(true)
	// Handlers below never block, so paho may call them in order on its
	// router goroutine: signaling messages (offer, then candidates) keep the
	// order the broker delivered them in.
	po.SetOrderMatters(true)
	po.SetAutoReconnect(true)
	po.SetConnectRetry(true)
	po.SetConnectRetryInterval(opts.RetryInterval)
	po.SetMaxReconnectInterval(opts.MaxRetryInterval)
	po.SetConnectTimeout(opts.ConnectTimeout)
	po.SetKeepAlive(opts.KeepAlive)
	po.SetPingTimeout(min(opts.KeepAlive, 10*time.Second))
	po.SetWriteTimeout(opts.SendTimeout)
	po.SetBinaryWill(layout.Presence(opts.User), offline, 1, true)
	store := newResumeStore()
	po.SetStore(store)
	po.SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
		store.seal()
		c.linkDown()
	})
	po.SetDefaultPublishHandler(c.onMessage)
	po.SetOnConnectHandler(c.onConnect)
	po.SetConnectionLostHandler(c.onLost)
	po.SetConnectionNotificationHandler(c.onNotification)

	c.pc = paho.NewClient(po)
	c.pc.Connect() // with ConnectRetry the token only completes once connected
	c.log.Info("mqtt signaling started", "brokers", opts.Brokers)
	return c, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func buildTLS(opts Options) (*tls.Config, error) {
	var cfg *tls.Config
	if opts.TLSConfig != nil {
		cfg = opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	if opts.CertFile != "" || opts.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s and key %s: %w", opts.CertFile, opts.KeyFile, err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return cfg, nil
}

// User returns the client's user ID.
func (c *Client) User() string { return c.opts.User }

// Session returns the client's session ID.
func (c *Client) Session() string { return c.opts.Session }

// Inbound returns the channel of received messages. It is closed by Close.
// There must be one consumer.
func (c *Client) Inbound() <-chan Inbound { return c.in }

// Status returns a channel reporting link transitions: true once connected,
// subscribed and announced online, false when the connection is lost. It holds only the latest
// state, so a slow reader sees the current state rather than a backlog. It is
// closed by Close.
func (c *Client) Status() <-chan bool { return c.status }

// Connected reports whether the link is up, subscribed and announced online.
func (c *Client) Connected() bool {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	return c.connected
}

// WaitConnected blocks until the link is up and subscribed, ctx ends, or the
// client is closed.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.stMu.Lock()
		ok, changed, closed := c.connected, c.changed, c.closed
		c.stMu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for mqtt connection: %w", ctx.Err())
		}
	}
}

// Send delivers payload to user to's inbox with QoS 1.
func (c *Client) Send(to string, payload []byte) error {
	if !usersig.ValidID(to) {
		return fmt.Errorf("send to %q: %w", to, ErrBadID)
	}
	if err := c.publish(c.layout.Inbox(to, c.opts.User), payload, false); err != nil {
		return fmt.Errorf("send to %s: %w", to, err)
	}
	return nil
}

// SendGroup broadcasts payload to the members of group with QoS 1. The group
// must be one of Options.Groups.
func (c *Client) SendGroup(group string, payload []byte) error {
	if !usersig.ValidID(group) {
		return fmt.Errorf("send to group %q: %w", group, ErrBadID)
	}
	if !slices.Contains(c.opts.Groups, group) {
		return fmt.Errorf("send to group %s: %w", group, ErrNotMember)
	}
	if err := c.publish(c.layout.Group(group, c.opts.User), payload, false); err != nil {
		return fmt.Errorf("send to group %s: %w", group, err)
	}
	return nil
}

func (c *Client) publish(name string, payload []byte, retain bool) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%d bytes: %w", len(payload), ErrTooLarge)
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if !c.pc.IsConnectionOpen() {
		return ErrNotConnected
	}
	return waitToken(c.pc.Publish(name, 1, retain, payload), c.opts.SendTimeout)
}

func waitToken(t paho.Token, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	case <-timer.C:
		return ErrTimeout
	}
}

// Close publishes "offline" presence (waiting at most until ctx ends or
// Options.SendTimeout passes),
// disconnects cleanly, and closes the Inbound and Status channels. It is
// idempotent; later calls return the first result.
func (c *Client) Close(ctx context.Context) error { return c.close(ctx, true) }

// CloseReplaced disconnects cleanly without publishing offline presence:
// for a login replaced by another of the same user, whose online presence
// must stand. A clean disconnect does not fire the last will either.
func (c *Client) CloseReplaced(ctx context.Context) error { return c.close(ctx, false) }

func (c *Client) close(ctx context.Context, offline bool) error {
	c.closeOnce.Do(func() {
		var errs []error
		if offline && c.pc.IsConnectionOpen() {
			if off, err := c.presence(PresenceOffline); err != nil {
				errs = append(errs, err)
			} else {
				t := c.pc.Publish(c.layout.Presence(c.opts.User), 1, true, off)
				timer := time.NewTimer(c.opts.SendTimeout)
				select {
				case <-t.Done():
					if err := t.Error(); err != nil {
						errs = append(errs, fmt.Errorf("publish offline presence: %w", err))
					}
				case <-ctx.Done():
					errs = append(errs, fmt.Errorf("publish offline presence: %w", ctx.Err()))
				case <-timer.C:
					errs = append(errs, fmt.Errorf("publish offline presence: %w", ErrTimeout))
				}
				timer.Stop()
			}
		}
		// From here on no transition is reported and no helper goroutine starts.
		c.stMu.Lock()
		c.closed = true
		c.stMu.Unlock()
		close(c.done)
		quiesce := uint(250)
		if dl, ok := ctx.Deadline(); ok {
			quiesce = uint(max(0, min(time.Until(dl), 250*time.Millisecond)).Milliseconds())
		}
		c.pc.Disconnect(quiesce)
		c.wg.Wait()

		c.inMu.Lock()
		c.inClosed = true
		close(c.in)
		c.inMu.Unlock()

		c.stMu.Lock()
		c.connected = false
		c.gen++
		close(c.changed)
		close(c.status)
		c.stMu.Unlock()
		c.log.Info("mqtt signaling closed")
		if len(errs) > 0 {
			c.closeErr = fmt.Errorf("mqttsig close: %w", errors.Join(errs...))
		}
	})
	return c.closeErr
}

func (c *Client) presence(state string) ([]byte, error) {
	b, err := json.Marshal(PresenceInfo{V: 1, State: state, Session: c.opts.Session, Versions: []int{1}})
	if err != nil {
		return nil, fmt.Errorf("encode presence: %w", err)
	}
	return b, nil
}

// setConnectedLocked records a link state and announces it; stMu must be held.
func (c *Client) setConnectedLocked(up bool) {
	if c.closed || c.connected == up {
		return
	}
	c.connected = up
	close(c.changed)
	c.changed = make(chan struct{})
	select { // keep only the latest state in the channel
	case <-c.status:
	default:
	}
	c.status <- up
}

// onConnect runs on a paho goroutine after every (re)connection. It starts
// the subscriptions and the online presence without waiting for them.
func (c *Client) onConnect(pc paho.Client) {
	c.failures.Store(0)
	c.stMu.Lock()
	if c.closed {
		c.stMu.Unlock()
		return
	}
	c.gen++
	gen := c.gen
	c.wg.Add(1)
	c.stMu.Unlock()

	filters := map[string]byte{
		c.layout.InboxFilter(c.opts.User): 1,
		c.layout.PresenceFilter():         1,
	}
	for _, g := range c.opts.Groups {
		filters[c.layout.GroupFilter(g)] = 1
	}
	subTok := pc.SubscribeMultiple(filters, nil)
	var pubTok paho.Token
	if online, err := c.presence(PresenceOnline); err == nil {
		pubTok = pc.Publish(c.layout.Presence(c.opts.User), 1, true, online)
	}
	go c.finishConnect(gen, subTok, pubTok)
}

// finishConnect waits until the subscriptions and the online presence of
// connection gen are acknowledged, then reports the link up unless it was
// lost meanwhile.
func (c *Client) finishConnect(gen uint64, subTok paho.Token, pubTok paho.Token) {
	defer c.wg.Done()
	timer := time.NewTimer(c.opts.ConnectTimeout)
	defer timer.Stop()
	for _, tok := range []paho.Token{subTok, pubTok} {
		if tok == nil {
			continue
		}
		select {
		case <-tok.Done():
		case <-c.done:
			return
		case <-timer.C:
			c.log.Warn("mqtt subscribe or presence not acknowledged in time")
			return
		}
		if err := tok.Error(); err != nil {
			c.log.Warn("mqtt subscribe or presence failed", "error", err)
			return
		}
	}
	if st, ok := subTok.(*paho.SubscribeToken); ok {
		for filter, code := range st.Result() {
			if code > 2 {
				c.log.Error("mqtt subscription refused by broker", "filter", filter, "code", code)
			}
		}
	}
	c.stMu.Lock()
	if c.gen == gen && c.pc.IsConnectionOpen() {
		c.setConnectedLocked(true)
		c.log.Info("mqtt signaling connected")
	}
	c.stMu.Unlock()
}

// onLost runs on a goroutine of its own, which paho starts together with
// the reconnection: it may run after the next connection is up, and must
// not report that one down. The reconnecting handler, which paho calls in
// order before every attempt, reports the link down in any case.
func (c *Client) onLost(_ paho.Client, err error) {
	if !c.pc.IsConnectionOpen() {
		c.linkDown()
	}
	c.log.Warn("mqtt connection lost; reconnecting", "error", err)
}

// linkDown reports the link down and abandons a connection still being
// set up.
func (c *Client) linkDown() {
	c.stMu.Lock()
	c.gen++
	c.setConnectedLocked(false)
	c.stMu.Unlock()
}

func (c *Client) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	var reason error
	var broker string
	switch n := n.(type) {
	case paho.ConnectionNotificationBrokerFailed:
		reason, broker = n.Reason, n.Broker.Redacted()
	case paho.ConnectionNotificationFailed:
		reason = n.Reason
	default:
		return
	}
	// Report the first failure of a streak loudly, the retries quietly.
	level := slog.LevelDebug
	if c.failures.Add(1) == 1 {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "mqtt connect attempt failed", "broker", broker, "error", reason)
	if c.opts.OnRefused != nil && (errors.Is(reason, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(reason, packets.ErrorRefusedNotAuthorised)) {
		c.opts.OnRefused(fmt.Errorf("%w: %w", ErrRefused, reason))
	}
}

// onMessage runs on paho's router goroutine: it must not block.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	n, err := c.layout.Parse(m.Topic())
	if err != nil {
		c.log.Warn("mqtt message on unexpected topic dropped", "topic", m.Topic())
		return
	}
	switch n.Kind {
	case topic.Direct:
		if n.To != c.opts.User {
			c.log.Warn("mqtt message for another user dropped", "topic", m.Topic())
			return
		}
	case topic.Group:
		if !slices.Contains(c.opts.Groups, n.Group) {
			c.log.Warn("mqtt broadcast of a foreign group dropped", "topic", m.Topic())
			return
		}
		if n.From == c.opts.User {
			return // our own broadcast echoed back
		}
	}
	if len(m.Payload()) > MaxPayload {
		c.log.Warn("mqtt oversized message dropped", "kind", n.Kind, "from", n.From, "bytes", len(m.Payload()), "limit", MaxPayload)
		return
	}
	in := Inbound{Kind: n.Kind, From: n.From, Group: n.Group, Payload: bytes.Clone(m.Payload()), Retained: m.Retained()}
	c.inMu.RLock()
	defer c.inMu.RUnlock()
	if c.inClosed {
		return
	}
	select {
	case c.in <- in:
	default:
		c.noteDrop(in)
	}
}

// noteDrop logs messages dropped because the consumer is behind, at most
// once a second.
func (c *Client) noteDrop(in Inbound) {
	c.dropMu.Lock()
	defer c.dropMu.Unlock()
	c.dropped++
	if now := time.Now(); now.Sub(c.dropLog) >= time.Second {
		c.log.Warn("mqtt inbound queue full; messages dropped", "dropped", c.dropped, "last_kind", in.Kind, "last_from", in.From)
		c.dropped = 0
		c.dropLog = now
	}
}
