// Package whep serves the door's camera and microphone over WHEP
// (draft-ietf-wish-whep, the WebRTC-HTTP egress protocol) to restreamers
// and recorders such as go2rtc (the `webrtc:` source Frigate and Home
// Assistant use), without a call.
//
// # Contract
//
// The non-trickle form: a client POSTs a complete SDP offer
// (application/sdp, every candidate in it) to the endpoint and gets 201
// Created with a complete answer and a Location naming the session's
// resource; DELETE on that resource ends the session. PATCH (trickle ICE,
// ICE restart) is answered 405. A session also ends when its connection
// fails or closes, when it has not connected within ConnectTimeout, when
// Drop names its token (revoked, expired) and on Close.
//
// Every request carries a usersig token of a user listed in Users: as
// "Authorization: Bearer <token>", as the password of HTTP Basic
// authentication (the user name, when given, must be the token's user), or
// as the query parameter token=<token>, because go2rtc sends nothing but
// the URL. A request without a valid token gets 401, a valid token of a
// user not listed 403, a body other than application/sdp 415, an offer
// over MaxOfferSize 413, an offer that is not SDP, has no audio or video
// section or receives nothing 400, an offer whose codecs the device does
// not send (H.264 packetization-mode 1, Opus) 415, and a request beyond
// MaxViewers sessions 503. Every refusal is logged with its reason;
// nothing it opened stays open.
//
// A session is a media.Viewer: receive-only, the same camera track and
// microphone track every call gets (one encoder whatever the number of
// viewers and calls). It never rings anyone and never changes a call; the
// camera and microphone run while a call or a session wants them.
//
// # Concurrency
//
// ServeHTTP may be called from any goroutine. Each session has one
// goroutine that owns its end: it waits for the connection's state, the
// connect deadline or a stop, then closes the viewer and forgets the
// session. Close stops every session and joins those goroutines.
//
// # Architecture
//
// whep sits on media (which owns PeerConnections and the shared tracks)
// and usersig; cmd/intercomd mounts it on the daemon's HTTPS port.
package whep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/usersig"
)

// Limits and defaults.
const (
	// MaxOfferSize bounds an offer's body; a browser's offer is 5 to 10 kB.
	MaxOfferSize = 64 << 10
	// MaxMediaSections bounds the m= sections of an offer.
	MaxMediaSections = 8
	// DefaultMaxViewers is the number of sessions served at once when
	// Options.MaxViewers is 0.
	DefaultMaxViewers = 2
	// DefaultConnectTimeout is how long a session may take to connect.
	DefaultConnectTimeout = 20 * time.Second
	// readTimeout bounds the reading of an offer.
	readTimeout = 10 * time.Second
	// answerTimeout bounds the gathering of the answer's candidates.
	answerTimeout = 10 * time.Second
	// retryAfter is what a client refused for lack of room is told.
	retryAfter = "10"
	// ContentType is the media type of offers and answers.
	ContentType = "application/sdp"
)

// Options configure a Server.
type Options struct {
	// Media makes the viewers; required.
	Media *media.Media
	// Secret verifies tokens (usersig); required.
	Secret []byte
	// Accept, when set, refuses a verified token (revoked): it returns ""
	// to accept or the reason to refuse.
	Accept func(token string, c usersig.Claims) string
	// Users may watch; a valid token of anybody else gets 403.
	Users []string
	// MaxViewers is the number of sessions served at once; default
	// DefaultMaxViewers.
	MaxViewers int
	// ConnectTimeout ends a session not connected this long after its
	// answer; default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Path is where the endpoint is mounted, default "/whep"; sessions are
	// Path/<id>.
	Path   string
	Logger *slog.Logger
	Now    func() time.Time
}

// Server is the WHEP endpoint: an http.Handler for Path and Path/.
type Server struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	reserved int // offers being answered
	closed   bool
	wg       sync.WaitGroup
}

type session struct {
	id, user, tokenID, token string
	remote                   string
	started                  time.Time
	v                        *media.Viewer
	wake                     chan struct{} // the connection's state changed
	stop                     chan string   // why to end
	done                     chan struct{} // closed when ended
}

// New returns a Server; mount it at Path and Path/.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Media == nil:
		return nil, errors.New("whep: Media is required")
	case len(opts.Secret) < usersig.MinSecretLen:
		return nil, errors.New("whep: a token secret is required")
	case len(opts.Users) == 0:
		return nil, errors.New("whep: nobody may watch: Users is empty")
	case opts.MaxViewers < 0 || opts.ConnectTimeout < 0:
		return nil, errors.New("whep: MaxViewers and ConnectTimeout must not be negative")
	}
	if opts.MaxViewers == 0 {
		opts.MaxViewers = DefaultMaxViewers
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.Path == "" {
		opts.Path = "/whep"
	}
	opts.Path = strings.TrimSuffix(opts.Path, "/")
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Users = slices.Clone(opts.Users)
	return &Server{opts: opts, log: opts.Logger, sessions: map[string]*session{}}, nil
}

// Viewers is the number of sessions open (connected or connecting).
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Drop ends the sessions for whose user and token drop reports true (a
// token revoked or expired since).
func (s *Server) Drop(drop func(user, token string) bool) {
	s.mu.Lock()
	var ended []*session
	for _, ss := range s.sessions {
		if drop(ss.user, ss.token) {
			ended = append(ended, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range ended {
		ss.end("token revoked or expired")
	}
}

// Close ends every session and waits for them; later requests get 503.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.end("server closing")
	}
	s.wg.Wait()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rest, ok := strings.CutPrefix(r.URL.Path, s.opts.Path)
	switch {
	case !ok:
		http.NotFound(w, r)
	case rest == "" || rest == "/":
		switch r.Method {
		case http.MethodPost:
			s.post(w, r)
		case http.MethodOptions:
			w.Header().Set("Allow", "POST, OPTIONS")
			w.Header().Set("Accept-Post", ContentType)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			s.refuse(w, r, http.StatusMethodNotAllowed, "POST an SDP offer here", "")
		}
	default:
		id := strings.TrimPrefix(rest, "/")
		switch r.Method {
		case http.MethodDelete:
			s.delete(w, r, id)
		case http.MethodOptions:
			w.Header().Set("Allow", "DELETE, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
		default:
			// PATCH included: no trickle ICE, no ICE restart.
			w.Header().Set("Allow", "DELETE, OPTIONS")
			s.refuse(w, r, http.StatusMethodNotAllowed, "a session takes DELETE only (no trickle ICE)", "")
		}
	}
}

// refuse answers status with msg as plain text and logs why.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, msg, user string, attrs ...any) {
	attrs = append([]any{"status", status, "reason", msg, "method", r.Method, "remote", r.RemoteAddr}, attrs...)
	if user != "" {
		attrs = append(attrs, "user", user)
	}
	s.log.Warn("whep request refused", attrs...)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// token finds the request's token: Bearer, Basic's password, or ?token=.
func token(r *http.Request) (tok, basicUser string) {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t), ""
	}
	if u, p, ok := r.BasicAuth(); ok {
		return p, u
	}
	return r.URL.Query().Get("token"), ""
}

// authorize checks the request's token; on refusal it has answered.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (usersig.Claims, string, bool) {
	tok, basicUser := token(r)
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intercomd"`)
		s.refuse(w, r, http.StatusUnauthorized, "a token is required: Authorization: Bearer <token>, or ?token=<token>", "")
		return usersig.Claims{}, "", false
	}
	c, err := usersig.Verify(s.opts.Secret, tok, s.opts.Now())
	if err == nil && basicUser != "" && basicUser != c.User {
		err = fmt.Errorf("basic authentication names %q, the token %q", basicUser, c.User)
	}
	if err == nil && s.opts.Accept != nil {
		if reason := s.opts.Accept(tok, c); reason != "" {
			err = errors.New(reason)
		}
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intercomd", error="invalid_token"`)
		s.refuse(w, r, http.StatusUnauthorized, "token refused: "+strings.TrimPrefix(err.Error(), "verify token: "), "",
			"token", usersig.TokenID(tok))
		return usersig.Claims{}, "", false
	}
	if !slices.Contains(s.opts.Users, c.User) {
		s.refuse(w, r, http.StatusForbidden, "user "+c.User+" may not watch (whep.users)", c.User)
		return usersig.Claims{}, "", false
	}
	return c, tok, true
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ContentType {
		s.refuse(w, r, http.StatusUnsupportedMediaType, "the body must be an SDP offer (Content-Type: application/sdp)", c.User)
		return
	}
	// The body is read before a slot is taken: a slow client holds none.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the offer is over %d bytes", MaxOfferSize), c.User)
		} else {
			s.refuse(w, r, http.StatusBadRequest, "reading the offer: "+err.Error(), c.User)
		}
		return
	}
	want, status, msg := checkOffer(body)
	if status != 0 {
		s.refuse(w, r, status, msg, c.User)
		return
	}
	// A slot is held from here until the session ends or the offer fails.
	if status, msg := s.reserve(); status != 0 {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.refuse(w, r, status, msg, c.User)
		return
	}
	registered := false
	defer func() {
		if !registered {
			s.release()
		}
	}()
	ss := &session{
		user: c.User, token: tok, tokenID: usersig.TokenID(tok), remote: r.RemoteAddr,
		wake: make(chan struct{}, 1), stop: make(chan string, 1), done: make(chan struct{}),
	}
	want.OnState = func(webrtc.PeerConnectionState) {
		select {
		case ss.wake <- struct{}{}:
		default:
		}
	}
	v, err := s.opts.Media.NewViewer(want)
	switch {
	case errors.Is(err, media.ErrNoMedia):
		s.refuse(w, r, http.StatusUnsupportedMediaType, "the offer asks only for what this device does not send (video is off)", c.User)
		return
	case err != nil:
		s.refuse(w, r, http.StatusServiceUnavailable, "media: "+err.Error(), c.User)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), answerTimeout)
	answer, err := v.Answer(ctx, string(body))
	cancel()
	if err == nil {
		status, msg = checkAnswer(answer)
	} else if errors.Is(err, media.ErrBadOffer) {
		status, msg = http.StatusBadRequest, err.Error()
	} else {
		status, msg = http.StatusInternalServerError, err.Error()
	}
	if status != 0 {
		v.Close()
		s.refuse(w, r, status, msg, c.User)
		return
	}
	ss.v, ss.id, ss.started = v, newID(), s.opts.Now()
	if !s.register(ss) {
		v.Close()
		s.refuse(w, r, http.StatusServiceUnavailable, "the server is closing", c.User)
		return
	}
	registered = true
	video, audio := v.Sends()
	s.log.Info("whep viewer added", "session", ss.id, "user", ss.user, "token", ss.tokenID, "remote", ss.remote,
		"video", video, "audio", audio, "viewers", s.Viewers())
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Location", s.opts.Path+"/"+ss.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// reserve takes a slot for an offer; 0 when there is one.
func (s *Server) reserve() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return http.StatusServiceUnavailable, "the server is closing"
	case len(s.sessions)+s.reserved >= s.opts.MaxViewers:
		return http.StatusServiceUnavailable, fmt.Sprintf("full: %d viewers (whep.max_viewers)", s.opts.MaxViewers)
	}
	s.reserved++
	return 0, ""
}

func (s *Server) release() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// register turns the reservation into the session and starts its
// goroutine; false once closed (the caller still holds the reservation).
func (s *Server) register(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.reserved--
	s.sessions[ss.id] = ss
	s.wg.Add(1)
	go s.run(ss)
	return true
}

// run owns the session's end.
func (s *Server) run(ss *session) {
	defer s.wg.Done()
	defer close(ss.done)
	connect := time.NewTimer(s.opts.ConnectTimeout)
	defer connect.Stop()
	connected, reason := false, ""
	for reason == "" {
		select {
		case <-ss.wake:
			switch ss.v.State() {
			case webrtc.PeerConnectionStateConnected:
				if !connected {
					connected = true
					connect.Stop()
					s.log.Info("whep viewer connected", "session", ss.id, "user", ss.user,
						"after", s.opts.Now().Sub(ss.started).Round(time.Millisecond))
				}
			case webrtc.PeerConnectionStateFailed:
				reason = "connection failed"
			case webrtc.PeerConnectionStateClosed:
				reason = "connection closed"
			}
		case <-connect.C:
			reason = fmt.Sprintf("not connected within %s", s.opts.ConnectTimeout)
		case reason = <-ss.stop:
		}
	}
	ss.v.Close()
	s.mu.Lock()
	delete(s.sessions, ss.id)
	n := len(s.sessions)
	s.mu.Unlock()
	s.log.Info("whep viewer left", "session", ss.id, "user", ss.user, "reason", reason,
		"watched", s.opts.Now().Sub(ss.started).Round(time.Second), "viewers", n)
}

// end asks the session to end (once; later reasons are dropped).
func (ss *session) end(reason string) {
	select {
	case ss.stop <- reason:
	default:
	}
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, id string) {
	c, _, ok := s.authorize(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil || ss.user != c.User {
		// Another user's session is as unknown as a missing one.
		s.refuse(w, r, http.StatusNotFound, "no such session", c.User)
		return
	}
	ss.end("deleted by the client")
	select {
	case <-ss.done:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

// newID is a session's resource name: 128 random bits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sent names what the device sends, for refusals.
const sent = "H.264 (packetization-mode=1, constrained baseline) video and Opus audio"

// checkOffer reads what an offer asks for; a status other than 0 refuses
// it.
func checkOffer(body []byte) (media.ViewerOptions, int, string) {
	var o media.ViewerOptions
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil {
		return o, http.StatusBadRequest, "the offer is not SDP: " + err.Error()
	}
	if len(d.MediaDescriptions) > MaxMediaSections {
		return o, http.StatusBadRequest, fmt.Sprintf("the offer has %d media sections, at most %d are served", len(d.MediaDescriptions), MaxMediaSections)
	}
	sessionDir := direction(d.Attributes, "sendrecv")
	var kinds, codecless []string
	for _, md := range d.MediaDescriptions {
		kind := md.MediaName.Media
		if kind != "video" && kind != "audio" {
			continue
		}
		kinds = append(kinds, kind)
		if dir := direction(md.Attributes, sessionDir); dir != "recvonly" && dir != "sendrecv" {
			continue // the client receives nothing here
		}
		codec := map[string]string{"video": "h264", "audio": "opus"}[kind]
		if !offersCodec(md, codec) {
			codecless = append(codecless, kind)
			continue
		}
		o.Video = o.Video || kind == "video"
		o.Audio = o.Audio || kind == "audio"
	}
	switch {
	case len(kinds) == 0:
		return o, http.StatusBadRequest, "the offer has no audio or video section"
	case o.Video || o.Audio:
		return o, 0, ""
	case len(codecless) > 0:
		return o, http.StatusUnsupportedMediaType, "the offer's " + strings.Join(codecless, " and ") +
			" codecs are not what this device sends: " + sent
	}
	return o, http.StatusBadRequest, "the offer receives nothing: its audio and video must be recvonly (or sendrecv)"
}

// checkAnswer refuses an answer that sends nothing (pion matched no codec
// of the offer).
func checkAnswer(answer string) (int, string) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return http.StatusInternalServerError, "answer: " + err.Error()
	}
	for _, md := range d.MediaDescriptions {
		dir := direction(md.Attributes, "sendrecv")
		if md.MediaName.Port.Value != 0 && (dir == "sendonly" || dir == "sendrecv") {
			return 0, ""
		}
	}
	return http.StatusUnsupportedMediaType, "no codec of the offer matches what this device sends: " + sent
}

// direction is the direction attribute among attrs, or def.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

// offersCodec reports whether md offers the codec (by name); for H.264 a
// format in packetization mode 1 (the profile is not checked: every H.264
// decoder decodes the constrained baseline the device sends).
func offersCodec(md *sdp.MediaDescription, name string) bool {
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, _ := strings.Cut(a.Value, " ")
		codec, _, _ := strings.Cut(enc, "/")
		if !strings.EqualFold(codec, name) {
			continue
		}
		if name != "h264" || fmtpHas(md, pt, "packetization-mode=1") {
			return true
		}
	}
	return false
}

// fmtpHas reports whether the fmtp of payload type pt in md has param.
func fmtpHas(md *sdp.MediaDescription, pt, param string) bool {
	for _, a := range md.Attributes {
		if p, params, _ := strings.Cut(a.Value, " "); a.Key == "fmtp" && p == pt {
			for _, kv := range strings.Split(params, ";") {
				if strings.TrimSpace(kv) == param {
					return true
				}
			}
		}
	}
	return false
}
