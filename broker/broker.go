// Package broker is intercomd's embedded MQTT broker (mochi-mqtt v2) with the
// signaling access rules built in, so a single board needs no external broker.
//
// Clients authenticate with their user ID as username and a usersig token as
// password; the broker refuses a missing token, a bad signature, an expired
// token and a username that is not the token's user. An optional credential
// check (Options.CheckCredentials) can admit further clients, such as the
// daemon itself. A client ID must be empty (the broker then assigns
// "<user>.<random>"), the user ID, or "<user>.<session>" with a session that
// is an ID too: user IDs cannot contain ".", so no user can take over
// another user's connection.
//
// Every session is clean: nothing is kept for a disconnected client and no
// session is resumed (Clean Session/Clean Start is forced, the MQTT 5
// session expiry is 0). What one user can make the broker hold is bounded:
// the packet size (the protocol's message limit plus room for the topic),
// the QoS 1 messages in flight or waiting to be written per connection, the
// subscriptions per connection, and the connections per user (clients
// admitted by CheckCredentials aside). A connection ends when its token
// expires, or when Disconnect says (a revoked token). A refused client gets
// the CONNACK code of its MQTT version: 0x04 (3.1.1) or 0x86 (5) for a bad
// username or token, 0x05/0x87 for what the user may not do, 0x02/0x85 for
// a client ID that is not the user's, 0x03/0x97 past the connections per
// user; a malformed MQTT 3.1.1 CONNECT closes the connection without
// CONNACK, as that version requires.
//
// Once admitted, user U may only use the topics of package
// github.com/intercomd/intercomd/mqttsig/topic: subscribe to its own inbox,
// its groups and presence; publish into any inbox, its groups and its own
// presence, always with its own ID as the last level. Everything else is
// denied, including last-will topics (checked at connect). Retained messages
// are kept only on presence topics; the retain flag is cleared elsewhere.
// Refusals are logged with the user and the reason, never with the token.
//
// Clients reach the broker over TCP (Options.Addr) and over WebSocket through
// WebSocketHandler, mounted on the daemon's own HTTP(S) server.
//
// A Broker is safe for concurrent use. New binds the TCP listener (so Addr is
// known at once), Start begins serving, Close disconnects every client and
// waits for their goroutines.
package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/mqttsig/topic"
	"github.com/intercomd/intercomd/usersig"
)

// DefaultMaxPacketSize bounds every MQTT packet the broker accepts: the
// protocol's message limit (calling.MaxMessageSize, 64 KiB) plus room for
// the fixed header, the topic name and MQTT 5 properties. A client that sends
// more is disconnected, with a log line.
const DefaultMaxPacketSize = calling.MaxMessageSize + packetOverhead

const packetOverhead = 4 << 10

// Per-connection and per-user bounds. Every message the broker delivers is
// QoS 1 (it refuses QoS 0 publishes and subscriptions, and wills are sent at
// QoS 1), so each one waits in the client's in-flight store until the client
// acknowledges it. Past MaxQueuedBytes (or MaxInflight messages) there, the
// broker drops further messages for that client rather than hold them, as
// Mosquitto does with max_queued_bytes and max_inflight_messages. So one
// connection holds at most about MaxQueuedBytes plus one message, and one
// user DefaultMaxConnsPerUser times that.
const (
	// MaxQueuedBytes bounds the payload bytes a client has not
	// acknowledged yet.
	MaxQueuedBytes = 1 << 20
	// MaxInflight bounds the unacknowledged messages to one client, and
	// the QoS 1 messages from one client not yet acknowledged by the
	// broker.
	MaxInflight = 256
	// MaxSubscriptions bounds the topic filters one connection holds.
	MaxSubscriptions = 32
	// DefaultMaxConnsPerUser bounds one user's simultaneous connections.
	DefaultMaxConnsPerUser = 8
)

// ClientIDSeparator separates the user from the session in a client ID,
// "<user>.<session>". It is not a character of user IDs, so the user part
// of a client ID is unambiguous.
const ClientIDSeparator = "."

// MaxKeepAlive is the longest keep-alive granted, in seconds: a client
// asking for more, or for none, gets this one, so that a connection that
// went silent (a phone that lost its network) ends after one and a half
// times it instead of holding one of its user's connections.
const MaxKeepAlive = 300

// ConnectTimeout is how long a new connection may take to send its MQTT
// CONNECT packet.
const ConnectTimeout = 10 * time.Second

const (
	tcpListenerID = "tcp"
	wsListenerID  = "ws"
)

// Options configures a Broker.
type Options struct {
	// Addr is the TCP listen address, such as ":1883" or "127.0.0.1:0"; ""
	// serves no TCP listener (WebSocket only).
	Addr string
	// TLSConfig, when set, makes the TCP listener speak MQTT over TLS.
	TLSConfig *tls.Config
	// Secret verifies user tokens (usersig). Required.
	Secret []byte
	// Prefix is the topic prefix; "" means topic.DefaultPrefix.
	Prefix string
	// Groups maps each group ID to its member user IDs.
	Groups map[string][]string
	// Logger receives refusals and broker events; nil discards them.
	Logger *slog.Logger
	// CheckCredentials, when set, is asked about a username/password pair
	// whose password is not a valid token for that username. Returning true
	// admits the client as that user, with the same access rules.
	CheckCredentials func(user string, password []byte) bool
	// Now is the clock used for token expiry; nil means time.Now.
	Now func() time.Time
	// MaxPacketSize bounds incoming packets; 0 means DefaultMaxPacketSize.
	MaxPacketSize uint32
	// MaxConnsPerUser bounds the connections of one user admitted by a
	// token; 0 means DefaultMaxConnsPerUser.
	MaxConnsPerUser int
	// OnMessage, when set, sees every direct and group message the broker
	// accepts (the daemon follows rings with it to push to closed apps). It
	// runs on the publisher's goroutine and must not block; payload is its
	// own copy.
	OnMessage func(name topic.Name, payload []byte)
	// Accept, when set, is asked about every verified token at connect:
	// "" admits it, anything else is the reason to refuse it (a revoked
	// token).
	Accept func(token string, c usersig.Claims) string
}

// Broker is the embedded MQTT broker.
type Broker struct {
	log    *slog.Logger
	srv    *mqtt.Server
	tcp    *tcpListener
	ws     *wsListener
	opts   Options
	layout topic.Layout
	groups topic.Groups

	upgrader websocket.Upgrader

	connMu sync.Mutex
	conns  map[net.Conn]*conn // admitted clients, by their connection

	mu      sync.Mutex
	started bool
	closed  bool
}

// New validates opts, creates the broker and binds its TCP listener.
func New(opts Options) (*Broker, error) {
	if len(opts.Secret) < usersig.MinSecretLen {
		return nil, fmt.Errorf("broker: token secret: %w", usersig.ErrWeakSecret)
	}
	layout, err := topic.New(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	groups := make(topic.Groups, len(opts.Groups))
	for g, members := range opts.Groups {
		if !usersig.ValidID(g) {
			return nil, fmt.Errorf("broker: group %q: invalid id", g)
		}
		for _, m := range members {
			if !usersig.ValidID(m) {
				return nil, fmt.Errorf("broker: group %q: member %q: invalid id", g, m)
			}
		}
		groups[g] = append([]string(nil), members...)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = DefaultMaxPacketSize
	}
	if opts.MaxConnsPerUser <= 0 {
		opts.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mqtt-broker")

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = opts.MaxPacketSize
	caps.MaximumSessionExpiryInterval = 0
	caps.MaximumInflight = MaxInflight
	caps.ReceiveMaximum = MaxInflight
	caps.MaximumClientWritesPending = MaxInflight
	caps.TopicAliasMaximum = 0
	// Not a bound but a switch: mochi deletes retained messages older than
	// this (24 hours by default), and a presence stays retained for as
	// long as its user is online. In-flight messages are bounded by
	// MaxInflight instead.
	caps.MaximumMessageExpiryInterval = 0
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		// mochi reports every connection at info level and dumps whole
		// packets (credentials included) in warnings; this package logs what
		// matters itself, so keep only mochi's errors.
		Logger: slog.New(minLevel{h: log.Handler(), min: slog.LevelError}),
		// $SYS topics are denied to everybody; publish them rarely.
		SysTopicResendInterval: 3600,
		// Publish: the device acting for a user (not reachable by clients).
		InlineClient: true,
	})
	b := &Broker{
		log:    log,
		srv:    srv,
		opts:   opts,
		layout: layout,
		groups: groups,
		ws:     &wsListener{log: log},
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			// Credentials travel inside the MQTT CONNECT packet, never in
			// cookies, so a cross-origin page gains nothing: accept any Origin
			// (browsers behind reverse proxies send foreign ones).
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	b.ws.conns.ended = b.ended
	if err := srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if opts.TLSConfig != nil {
			l = tls.NewListener(l, opts.TLSConfig)
		}
		b.tcp = &tcpListener{l: l, log: log}
		b.tcp.conns.ended = b.ended
		if err := srv.AddListener(b.tcp); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("broker: tcp listener: %w", err)
		}
	}
	if err := srv.AddListener(b.ws); err != nil {
		b.closeTCP()
		return nil, fmt.Errorf("broker: websocket listener: %w", err)
	}
	return b, nil
}

// Addr returns the bound TCP address (host:port), or "" without a TCP listener.
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// Start begins accepting clients. It returns at once.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("broker: start after close")
	}
	if b.started {
		return errors.New("broker: already started")
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.started = true
	b.log.Info("mqtt broker started", "tcp", b.Addr(), "prefix", b.layout.Prefix())
	return nil
}

// Close disconnects every client (sending their last wills), closes the
// listeners and waits for the client goroutines. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.started {
		b.closeTCP()
		b.ws.Close(func(string) {})
		return nil
	}
	err := b.srv.Close()
	b.log.Info("mqtt broker stopped")
	return err
}

func (b *Broker) closeTCP() {
	if b.tcp != nil {
		b.tcp.Close(func(string) {})
	}
}

// WebSocketHandler serves MQTT over WebSocket (subprotocol "mqtt"), the only
// way browsers speak MQTT. Mount it on the daemon's HTTP(S) server, for
// example at "/mqtt". Each request upgrades and then blocks for the life of
// the MQTT connection.
func (b *Broker) WebSocketHandler() http.Handler {
	return http.HandlerFunc(b.serveWebSocket)
}

func (b *Broker) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	running := b.started && !b.closed
	b.mu.Unlock()
	if !running {
		http.Error(w, "mqtt broker not running", http.StatusServiceUnavailable)
		return
	}
	c, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		b.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "error", err)
		return
	}
	conn := &wsConn{Conn: c.UnderlyingConn(), ws: c}
	b.ws.conns.serve(wsListenerID, conn, b.srv.EstablishConnection, b.log)
}

func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || websocket.IsCloseError(err,
		websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived)
}

// hook authenticates clients and enforces the topic access rule.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "intercomd-auth" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnConnect, mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnPublish:
		return true
	}
	return false
}

// conn is an admitted client.
type conn struct {
	cl      *mqtt.Client
	user    string
	token   string      // "" when admitted by CheckCredentials
	expires *time.Timer // ends the connection when the token expires

	dropping atomic.Bool // messages for it are being dropped (logged once)
	qos0     atomic.Bool // a QoS 0 publish was refused (logged once)
}

// OnPacketRead makes every session clean before mochi looks at a CONNECT:
// Clean Session (Clean Start in MQTT 5) set, no session expiry, no will
// delay, no topic aliases; so no session outlives its connection or is
// resumed, not even by its own user. An MQTT 5 DISCONNECT cannot give the
// session an expiry either. It reads a present but empty password as no
// password (MQTT 3.1.1 allows it), so that it is refused with the usual "bad
// username or password" code instead of a protocol error; bounds the
// keep-alive (MaxKeepAlive); and ends a malformed MQTT 3.1.1 CONNECT
// without CONNACK [MQTT-3.1.4-1] (mochi would answer with an MQTT 5 code).
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Disconnect:
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 0, false
		return pk, nil
	case packets.Connect:
	default:
		return pk, nil
	}
	pk.Connect.Clean = true
	pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = 0, false
	pk.Properties.TopicAliasMaximum = 0
	pk.Connect.WillProperties.WillDelayInterval = 0
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	if pk.Connect.Keepalive == 0 || pk.Connect.Keepalive > MaxKeepAlive {
		pk.Connect.Keepalive = MaxKeepAlive
		cl.State.ServerKeepalive = true // tells an MQTT 5 client in the CONNACK
	}
	if pk.ProtocolVersion < 5 {
		if code := pk.ConnectValidate(); code != packets.CodeSuccess {
			h.b.refused(cl, pk, "malformed CONNECT: "+code.Reason)
			return pk, packets.ErrRejectPacket // the only error mochi does not ignore here
		}
	}
	return pk, nil
}

// OnPacketEncode gives an MQTT 3.1.1 client a CONNACK return code of its
// version: mochi passes some MQTT 5 reason codes through.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ProtocolVersion < 5 {
		pk.ReasonCode = v3ConnackCode(pk.ReasonCode)
	}
	return pk
}

// v3ConnackCode maps an MQTT 5 CONNACK reason code to the MQTT 3.1.1 return
// code of the same meaning; codes below 0x80 are returned as they are.
func v3ConnackCode(c byte) byte {
	switch {
	case c < 0x80:
		return c
	case c == packets.ErrUnsupportedProtocolVersion.Code:
		return packets.Err3UnsupportedProtocolVersion.Code
	case c == packets.ErrClientIdentifierNotValid.Code, c == packets.ErrUnspecifiedError.Code:
		// mochi's 0x80 answers a persistent session without client ID,
		// which MQTT 3.1.1 refuses with 0x02 [MQTT-3.1.3-8].
		return packets.Err3ClientIdentifierNotValid.Code
	case c == packets.ErrBadUsernameOrPassword.Code, c == packets.ErrBadAuthenticationMethod.Code:
		return packets.ErrMalformedUsernameOrPassword.Code // 0x04 bad user name or password
	case c == packets.ErrNotAuthorized.Code, c == packets.ErrBanned.Code:
		return packets.Err3NotAuthorized.Code
	default:
		return packets.Err3ServerUnavailable.Code
	}
}

// ended drops the record of the client on c, once its connection is over,
// and logs a packet too large (mochi closes such a connection silently).
func (b *Broker) ended(c net.Conn, err error) {
	b.connMu.Lock()
	k := b.conns[c]
	delete(b.conns, c)
	b.connMu.Unlock()
	user, client := "", ""
	if k != nil {
		if k.expires != nil {
			k.expires.Stop()
		}
		user, client = k.user, k.cl.ID
	}
	switch {
	case errors.Is(err, packets.ErrPacketTooLarge):
		b.log.Warn("mqtt connection closed: packet too large", "user", user, "client", client,
			"remote", c.RemoteAddr(), "limit", b.opts.MaxPacketSize)
	case errors.Is(err, errNotReading):
		b.log.Warn("mqtt connection closed: client not reading", "user", user, "client", client,
			"remote", c.RemoteAddr(), "limit", MaxPendingWrite)
	}
}

// Disconnect closes, at once, every connection admitted by a token whose
// user and token match (a revoked token); it returns how many it closed.
// Clients admitted by CheckCredentials are not asked about.
func (b *Broker) Disconnect(match func(user, token string) bool, reason string) int {
	b.connMu.Lock()
	var stop []*conn
	for _, k := range b.conns {
		if k.token != "" && match(k.user, k.token) {
			stop = append(stop, k)
		}
	}
	b.connMu.Unlock()
	for _, k := range stop {
		b.stop(k, reason)
	}
	return len(stop)
}

func (b *Broker) stop(k *conn, reason string) {
	b.log.Info("mqtt connection closed", "user", k.user, "client", k.cl.ID, "reason", reason)
	k.cl.Stop(errors.New(reason))
}

// OnConnect admits a client, or refuses it with a log line and a CONNACK
// whose code says why (mochi's own refusal would say "bad username or
// password" whatever the reason).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	user := string(pk.Connect.Username)
	code, reason, claims := h.b.authenticate(user, cl.ID, pk)
	if reason == "" {
		code, reason = h.b.admit(cl, user, pk, claims)
	}
	if reason != "" {
		h.b.refused(cl, pk, reason)
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code.Code}
		ack.Properties.ReasonString = reason
		_ = cl.WritePacket(ack)
		return code
	}
	h.b.retire(cl.ID)
	h.b.log.Info("mqtt client connected", "user", user, "client", cl.ID, "remote", cl.Net.Remote, "listener", cl.Net.Listener)
	return nil
}

// retireWait bounds how long a new connection waits for the one it
// replaces to be torn down.
const retireWait = 2 * time.Second

// retire ends the connection holding client ID id, if any, and waits until
// mochi has torn it down, before a new connection with that ID is attached.
// mochi tears a clean session down by client ID after its connection ends
// (unsubscribing the ID and deleting it from its client list): when a client
// reconnected at once (a phone back after a drop, paho's reconnect keeps its
// client ID) that late teardown removed the new connection's subscriptions
// and entry, and the phone, connected, received nothing. Waiting here leaves
// no teardown of the old connection to race with the new one; sessions are
// never taken over (nothing is resumed anyway).
func (b *Broker) retire(id string) {
	deadline := time.Now().Add(retireWait)
	for {
		old, ok := b.srv.Clients.Get(id)
		if !ok {
			return
		}
		if !old.Closed() {
			_ = b.srv.DisconnectClient(old, packets.ErrSessionTakenOver)
		}
		if time.Now().After(deadline) {
			b.log.Warn("mqtt connection replaced before its predecessor was torn down", "client", id)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *Broker) refused(cl *mqtt.Client, pk packets.Packet, reason string) {
	b.log.Warn("mqtt connection refused",
		"user", printable(string(pk.Connect.Username)), "client", printable(pk.Connect.ClientIdentifier),
		"remote", cl.Net.Remote, "listener", cl.Net.Listener, "reason", reason)
}

// OnConnectAuthenticate admits the clients OnConnect admitted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	h.b.connMu.Lock()
	defer h.b.connMu.Unlock()
	_, ok := h.b.conns[cl.Net.Conn]
	return ok
}

// admit records an authenticated client, unless it has a token and its
// user has MaxConnsPerUser such connections already (one that this client
// takes over, having the same client ID, does not count). A token's
// connection ends when the token expires. An empty client ID becomes
// "<user>.<random>".
func (b *Broker) admit(cl *mqtt.Client, user string, pk packets.Packet, claims *usersig.Claims) (packets.Code, string) {
	if pk.Connect.ClientIdentifier == "" {
		cl.ID = user + ClientIDSeparator + cl.ID
		if cl.Properties.Props.AssignedClientID != "" {
			cl.Properties.Props.AssignedClientID = cl.ID
		}
	}
	k := &conn{cl: cl, user: user}
	b.connMu.Lock()
	defer b.connMu.Unlock()
	n := 0
	for _, o := range b.conns {
		if o.token != "" && o.user == user && o.cl.ID != cl.ID {
			n++
		}
	}
	if claims != nil && n >= b.opts.MaxConnsPerUser {
		return packets.ErrQuotaExceeded, fmt.Sprintf("too many connections for the user (limit %d)", b.opts.MaxConnsPerUser)
	}
	if claims != nil {
		k.token = string(pk.Connect.Password)
		k.expires = time.AfterFunc(claims.Expires.Sub(b.opts.Now()), func() { b.stop(k, "token expired") })
	}
	if b.conns == nil {
		b.conns = map[net.Conn]*conn{}
	}
	b.conns[cl.Net.Conn] = k
	return packets.CodeSuccess, ""
}

// ownsClientID reports whether user may connect with client ID id: the user
// ID itself, or "<user>.<session>" with a session that is an ID.
func ownsClientID(user, id string) bool {
	if id == user {
		return true
	}
	session, ok := strings.CutPrefix(id, user+ClientIDSeparator)
	return ok && usersig.ValidID(session)
}

// authenticate returns "" to admit, or the reason for refusal and its
// MQTT 5 reason code; and the token's claims when the client is admitted by
// its token.
func (b *Broker) authenticate(user, clientID string, pk packets.Packet) (packets.Code, string, *usersig.Claims) {
	bad := func(reason string) (packets.Code, string, *usersig.Claims) {
		return packets.ErrBadUsernameOrPassword, reason, nil
	}
	if !usersig.ValidID(user) {
		return bad("invalid or missing username")
	}
	if pk.Connect.ClientIdentifier != "" && !ownsClientID(user, clientID) {
		return packets.ErrClientIdentifierNotValid, "client id does not belong to the user", nil
	}
	if len(pk.Connect.Password) == 0 {
		return bad("no token")
	}
	var admitted *usersig.Claims
	claims, err := usersig.Verify(b.opts.Secret, string(pk.Connect.Password), b.opts.Now())
	switch {
	case err == nil && claims.User == user:
		if b.opts.Accept != nil {
			if reason := b.opts.Accept(string(pk.Connect.Password), claims); reason != "" {
				return bad(reason)
			}
		}
		admitted = &claims
	case err == nil:
		if !b.extraCheck(user, pk.Connect.Password) {
			return bad("username does not match the token's user")
		}
	default:
		if !b.extraCheck(user, pk.Connect.Password) {
			return bad(tokenReason(err))
		}
	}
	if pk.Connect.WillFlag {
		if !b.layout.CanPublish(user, pk.Connect.WillTopic, b.groups) {
			return packets.ErrNotAuthorized, "last will topic not allowed", nil
		}
		if pk.Connect.WillRetain && !b.isPresence(pk.Connect.WillTopic) {
			return packets.ErrNotAuthorized, "retained last will outside presence", nil
		}
	}
	return packets.CodeSuccess, "", admitted
}

func (b *Broker) extraCheck(user string, password []byte) bool {
	return b.opts.CheckCredentials != nil && b.opts.CheckCredentials(user, bytes.Clone(password))
}

func tokenReason(err error) string {
	switch {
	case errors.Is(err, usersig.ErrExpired):
		return "token expired"
	case errors.Is(err, usersig.ErrBadSignature):
		return "bad token signature"
	case errors.Is(err, usersig.ErrBadUser):
		return "token names an invalid user"
	default:
		return "malformed token"
	}
}

func (b *Broker) isPresence(name string) bool {
	n, err := b.layout.Parse(name)
	return err == nil && n.Kind == topic.Presence
}

// OnACLCheck applies the topic access rule to subscriptions (write false,
// topic is a filter) and publishes (write true, topic is a name). mochi
// also asks it before delivering each message (write false, topic is a
// name): then it refuses while the client has MaxQueuedBytes or more
// unacknowledged.
func (h *hook) OnACLCheck(cl *mqtt.Client, t string, write bool) bool {
	user := string(cl.Properties.Username)
	var ok bool
	if write {
		ok = h.b.layout.CanPublish(user, t, h.b.groups)
	} else {
		ok = h.b.layout.CanSubscribe(user, t, h.b.groups)
	}
	if !ok {
		op := "subscribe"
		if write {
			op = "publish"
		}
		h.b.log.Warn("mqtt access denied", "user", user, "client", cl.ID, "op", op, "topic", printable(t))
		return false
	}
	if !write {
		return h.b.room(cl)
	}
	return true
}

// room reports whether a message may be queued for cl, and logs when a
// client starts and stops having messages dropped.
func (b *Broker) room(cl *mqtt.Client) bool {
	if cl.Net.Inline {
		return true
	}
	n := 0
	for _, pk := range cl.State.Inflight.GetAll(false) {
		n += len(pk.Payload)
	}
	ok := n < MaxQueuedBytes
	if k := b.conn(cl); k != nil && k.dropping.Swap(!ok) == ok {
		if ok {
			b.log.Info("mqtt client acknowledging again", "user", k.user, "client", cl.ID)
		} else {
			b.log.Warn("mqtt messages dropped: client not acknowledging", "user", k.user, "client", cl.ID,
				"unacknowledged_bytes", n, "limit", MaxQueuedBytes)
		}
	}
	return ok
}

// conn returns the record of an admitted client, or nil.
func (b *Broker) conn(cl *mqtt.Client) *conn {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.conns[cl.Net.Conn]
}

// OnWill sends every will at QoS 1 and at once, like every message.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	will.Qos = max(will.Qos, 1)
	will.WillDelayInterval = 0
	return will, nil
}

// OnSubscribe refuses QoS 0 subscriptions and the filters past
// MaxSubscriptions (by making them invalid, so that the client gets a
// failure code for each of them).
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	held := cl.State.Subscriptions.GetAll()
	n := len(held)
	var refused, qos0 int
	for i, sub := range pk.Filters {
		if sub.Qos == 0 {
			pk.Filters[i].Filter = "" // an invalid filter
			qos0++
			continue
		}
		if _, ok := held[sub.Filter]; ok {
			continue
		}
		if n >= MaxSubscriptions {
			pk.Filters[i].Filter = "" // an invalid filter
			refused++
			continue
		}
		held[sub.Filter] = sub
		n++
	}
	if qos0 > 0 {
		h.b.log.Warn("mqtt subscriptions refused: QoS 0", "user", string(cl.Properties.Username),
			"client", cl.ID, "refused", qos0)
	}
	if refused > 0 {
		h.b.log.Warn("mqtt subscriptions refused: too many", "user", string(cl.Properties.Username),
			"client", cl.ID, "refused", refused, "limit", MaxSubscriptions)
	}
	return pk
}

// OnPublish drops QoS 0 publishes (their deliveries would escape the
// in-flight bound) and clears the retain flag outside presence topics, so
// nobody can leave a message waiting in an inbox or group forever.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 && !cl.Net.Inline {
		if k := h.b.conn(cl); k != nil && !k.qos0.Swap(true) {
			h.b.log.Warn("mqtt QoS 0 publish dropped (every message is QoS 1)", "user", k.user, "client", cl.ID,
				"topic", printable(pk.TopicName))
		}
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Retain && !h.b.isPresence(pk.TopicName) {
		pk.FixedHeader.Retain = false
	}
	if h.b.opts.OnMessage != nil {
		if n, err := h.b.layout.Parse(pk.TopicName); err == nil && n.Kind != topic.Presence {
			h.b.opts.OnMessage(n, bytes.Clone(pk.Payload))
		}
	}
	return pk, nil
}

// Publish delivers payload to user to's inbox as a message from user from
// (QoS 1), as though from had published it: the device acts for a user
// who answered a notification without opening the app.
func (b *Broker) Publish(to, from string, payload []byte) error {
	if !usersig.ValidID(to) || !usersig.ValidID(from) {
		return fmt.Errorf("broker: publish: %w", topic.ErrNotOurs)
	}
	return b.srv.Publish(b.layout.Inbox(to, from), payload, false, 1)
}

// printable shortens and sanitises a client-supplied string for logs.
func printable(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// connSet tracks a listener's live connections so that Close can end every
// one of them, including those still in the MQTT handshake, which mochi does
// not know about yet and would otherwise wait for forever.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	ended  func(net.Conn, error) // called when a connection is over
	active sync.WaitGroup        // serve calls under way
}

// serve runs mochi's establish for c, which returns when the client is gone.
// The CONNECT packet must arrive within ConnectTimeout; mochi then replaces
// the deadline with the client's keepalive.
func (s *connSet) serve(id string, c net.Conn, establish listeners.EstablishFn, log *slog.Logger) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	w := newWriteBuffer(c)
	c = w
	s.conns[c] = struct{}{}
	s.active.Add(1)
	s.mu.Unlock()
	defer s.active.Done()
	var err error
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
		if werr := w.failure(); errors.Is(werr, errNotReading) {
			err = werr
		}
		if s.ended != nil {
			s.ended(c, err)
		}
	}()
	_ = c.SetDeadline(time.Now().Add(ConnectTimeout))
	if err = establish(id, c); err != nil && !isClosedConn(err) {
		log.Debug("mqtt connection ended", "listener", id, "remote", c.RemoteAddr(), "error", err)
	}
}

// close refuses new connections and closes the current ones.
func (s *connSet) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// shut closes the connections, waits (a bounded time) until mochi has let
// go of every one, and only then lets it disconnect what it still lists:
// mochi's listing takes its clients' read lock twice, which deadlocks
// against a client being attached at the same moment.
func (s *connSet) shut(id string, closeClients listeners.CloseFn, log *slog.Logger) {
	s.close()
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		closeClients(id)
	case <-time.After(5 * time.Second):
		log.Warn("mqtt connections still open at close", "listener", id)
	}
}

func (s *connSet) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// tcpListener is the mochi listener for MQTT over TCP (or TLS). Unlike
// mochi's own, it stops accepting before disconnecting the clients, closes
// connections that arrive while closing instead of leaving them hanging, and
// bounds the wait for CONNECT, so neither a restart nor an idle socket can
// stall the broker.
type tcpListener struct {
	l     net.Listener
	log   *slog.Logger
	conns connSet
}

func (l *tcpListener) Init(*slog.Logger) error { return nil }
func (l *tcpListener) ID() string              { return tcpListenerID }
func (l *tcpListener) Address() string         { return l.l.Addr().String() }
func (l *tcpListener) Protocol() string        { return "tcp" }

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.l.Accept()
		if err != nil {
			if l.conns.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and try again.
			l.log.Warn("mqtt tcp accept failed", "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go l.conns.serve(tcpListenerID, c, establish, l.log)
	}
}

func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	if l.conns.isClosed() {
		return
	}
	_ = l.l.Close()
	l.conns.shut(tcpListenerID, closeClients, l.log)
}

// wsListener is the mochi listener for connections upgraded by
// WebSocketHandler: it accepts nothing itself but lets mochi disconnect those
// clients on Close, and closes any connection still being set up.
type wsListener struct {
	log   *slog.Logger
	conns connSet
}

func (l *wsListener) Init(*slog.Logger) error     { return nil }
func (l *wsListener) Serve(listeners.EstablishFn) {}
func (l *wsListener) ID() string                  { return wsListenerID }
func (l *wsListener) Address() string             { return "" }
func (l *wsListener) Protocol() string            { return "ws" }

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.conns.shut(wsListenerID, closeClients, l.log)
}

// wsConn presents a WebSocket as the byte stream mochi reads MQTT from: each
// binary message carries a chunk of the stream.
type wsConn struct {
	net.Conn // the underlying connection, for addresses and deadlines
	ws       *websocket.Conn

	r  io.Reader  // current message, read only by mochi's reader
	wm sync.Mutex // one writer at a time, as gorilla requires
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errors.New("websocket: mqtt needs binary messages")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.Conn.Close() }

// minLevel drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{h: m.h.WithGroup(g), min: m.min} }
