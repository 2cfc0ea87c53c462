package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/intercomd/intercomd/push"
	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/visitorlog"
)

// ErrNotRinging is what APIOptions.Decline returns when the call does not
// (or no longer) ring the user: it ended, was answered, or never was theirs.
var ErrNotRinging = errors.New("the call is not ringing this user")

// maxAPIBody bounds a request body of the API.
const maxAPIBody = 8 << 10

// APIOptions configures the API.
type APIOptions struct {
	// Secret verifies user tokens (usersig).
	Secret []byte
	// Accept, when set, refuses a verified token (revoked): it returns ""
	// to accept or the reason to refuse.
	Accept func(token string, c usersig.Claims) string
	// Store keeps push subscriptions; nil: Web Push is off.
	Store *push.Store
	// VAPIDKey is the device's VAPID public key (applicationServerKey).
	VAPIDKey string
	// Decline declines call for user, as their app would; ErrNotRinging
	// when it does not ring them.
	Decline func(call, user string) error
	// Reinvite delivers the invitation of call to user's devices again
	// (an app opened by a notification's Answer, after the invitation was
	// sent); ErrNotRinging when it does not ring them.
	Reinvite func(call, user string) error
	// Snapshot returns the JPEG of call's snapshot for user, given the key
	// of its URL; ErrNotRinging when the call does not ring the user or the
	// key is wrong.
	Snapshot func(call, user, key string) ([]byte, error)
	// Ringing is told that an app of the user rings for call (ring
	// latency); ErrNotRinging when it does not ring them.
	Ringing func(call, user string) error
	// Renew returns a fresh token for the user (and device) of a valid
	// one, and its expiry.
	Renew func(token string, c usersig.Claims) (string, time.Time, error)
	// Visitors is the visitor log; nil: the log is off.
	Visitors Visitors
	// VisitorReader reports whether user may read the visitor log (the
	// residents the doorbell rings and the door users); nil: every
	// signed-in user may.
	VisitorReader func(user string) bool
	Logger        *slog.Logger
	Now           func() time.Time
}

// Visitors is the visitor log as the API reads it (*visitorlog.Log).
type Visitors interface {
	List() []visitorlog.Entry
	Image(id string) ([]byte, error)
	Audio(id string) ([]byte, error)
}

// Tokens verifies the user tokens that requests carry as
// "Authorization: Bearer <token>".
type Tokens struct {
	// Secret verifies user tokens (usersig); without one no token is
	// valid.
	Secret []byte
	// Accept, when set, refuses a verified token (revoked): it returns ""
	// to accept or the reason to refuse.
	Accept func(token string, c usersig.Claims) string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// errNoToken: the request carries no bearer token.
var errNoToken = errors.New("sign in: Authorization: Bearer <token> required")

// Verify returns the token of r and its claims, or why it is refused.
func (t Tokens) Verify(r *http.Request) (string, usersig.Claims, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", usersig.Claims{}, errNoToken
	}
	tok = strings.TrimSpace(tok)
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	c, err := usersig.Verify(t.Secret, tok, now())
	if err == nil && t.Accept != nil {
		if reason := t.Accept(tok, c); reason != "" {
			err = errors.New(reason)
		}
	}
	if err != nil {
		return "", usersig.Claims{}, fmt.Errorf("token refused: %s", strings.TrimPrefix(err.Error(), "verify token: "))
	}
	return tok, c, nil
}

// refuse answers 401 for an error of Verify.
func refuse(w http.ResponseWriter, err error) {
	if errors.Is(err, errNoToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intercomd"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intercomd", error="invalid_token"`)
	}
	apiError(w, http.StatusUnauthorized, err.Error())
}

// API serves the authenticated HTTPS actions of the app under /api/ (see
// docs/protocol.md): push subscriptions and the actions of a notification.
// Every action carries the user's token as "Authorization: Bearer <token>"
// and is authorised against that user.
type API struct {
	opts APIOptions
	mux  *http.ServeMux
}

// NewAPI returns the API; mount it at /api/.
func NewAPI(opts APIOptions) *API {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{opts: opts, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /api/push", a.pushInfo)
	a.mux.HandleFunc("POST /api/token", a.authedToken(a.renew))
	a.mux.HandleFunc("GET /api/calls/{call}/snapshot", a.authed(a.snapshot))
	a.mux.HandleFunc("POST /api/push/subscriptions", a.authed(a.subscribe))
	a.mux.HandleFunc("DELETE /api/push/subscriptions/{device}", a.authed(a.unsubscribe))
	a.mux.HandleFunc("POST /api/calls/{call}/decline", a.authed(a.callAction(opts.Decline)))
	a.mux.HandleFunc("POST /api/calls/{call}/invite", a.authed(a.callAction(opts.Reinvite)))
	a.mux.HandleFunc("POST /api/calls/{call}/ringing", a.authed(a.callAction(opts.Ringing)))
	a.mux.HandleFunc("GET /api/visitors", a.authed(a.visitorsOnly(a.visitors)))
	a.mux.HandleFunc("GET /api/visitors/{id}/snapshot", a.authed(a.visitorsOnly(a.visitorFile("picture", "image/jpeg", Visitors.Image))))
	a.mux.HandleFunc("GET /api/visitors/{id}/message", a.authed(a.visitorsOnly(a.visitorFile("voice message", "audio/ogg", Visitors.Audio))))
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// apiError answers with a JSON {"error": msg}.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authed verifies the bearer token and passes its user on.
func (a *API) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return a.authedToken(func(w http.ResponseWriter, r *http.Request, _ string, c usersig.Claims) { h(w, r, c.User) })
}

// authedToken verifies the bearer token and passes it and its claims on.
func (a *API) authedToken(h func(http.ResponseWriter, *http.Request, string, usersig.Claims)) http.HandlerFunc {
	tokens := Tokens{Secret: a.opts.Secret, Accept: a.opts.Accept, Now: a.opts.Now}
	return func(w http.ResponseWriter, r *http.Request) {
		tok, c, err := tokens.Verify(r)
		if err != nil {
			refuse(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		h(w, r, tok, c)
	}
}

func (a *API) pushInfo(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"enabled": a.opts.Store != nil, "key": a.opts.VAPIDKey})
}

// subscribeRequest is the body of POST /api/push/subscriptions: the
// device's ID (chosen by the app, kept in its storage) and
// PushSubscription.toJSON().
type subscribeRequest struct {
	Device       string `json:"device"`
	Subscription struct {
		Endpoint string `json:"endpoint"`
		Keys     struct {
			P256dh string `json:"p256dh"`
			Auth   string `json:"auth"`
		} `json:"keys"`
	} `json:"subscription"`
}

func (a *API) subscribe(w http.ResponseWriter, r *http.Request, user string) {
	if a.opts.Store == nil {
		apiError(w, http.StatusServiceUnavailable, "Web Push is off on this device (push.contact is not set)")
		return
	}
	var req subscribeRequest
	// Unknown fields are allowed: browsers add some (expirationTime).
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	err := a.opts.Store.Add(push.Subscription{
		User: user, Device: req.Device, Endpoint: req.Subscription.Endpoint,
		P256dh: req.Subscription.Keys.P256dh, Auth: req.Subscription.Keys.Auth,
	}, a.opts.Now())
	switch {
	case errors.Is(err, push.ErrBadSubscription):
		apiError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, push.ErrStoreFull):
		apiError(w, http.StatusInsufficientStorage, err.Error())
	case err != nil:
		a.opts.Logger.Error("store push subscription", "user", user, "err", err)
		apiError(w, http.StatusInternalServerError, "could not store the subscription")
	default:
		a.opts.Logger.Info("push subscription added", "user", user, "device", req.Device)
		w.WriteHeader(http.StatusCreated)
	}
}

func (a *API) unsubscribe(w http.ResponseWriter, r *http.Request, user string) {
	if a.opts.Store != nil {
		if _, err := a.opts.Store.Remove(user, r.PathValue("device")); err != nil {
			apiError(w, http.StatusInternalServerError, "could not remove the subscription")
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// callAction serves an action of a notification on the call it names,
// authorised against that call ringing the user.
func (a *API) callAction(f func(call, user string) error) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		if f == nil {
			apiError(w, http.StatusServiceUnavailable, "actions from a notification need push and the embedded broker")
			return
		}
		err := f(r.PathValue("call"), user)
		switch {
		case errors.Is(err, ErrNotRinging):
			apiError(w, http.StatusGone, "this call is over, or not ringing you")
		case err != nil:
			a.opts.Logger.Warn("action from a notification", "user", user, "path", r.URL.Path, "err", err)
			apiError(w, http.StatusBadGateway, "could not do it: "+err.Error())
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// renew answers {"token": ..., "expires": <unix ms>}: a fresh token for the
// same user and device once the old one nears its end, else the same.
func (a *API) renew(w http.ResponseWriter, _ *http.Request, tok string, c usersig.Claims) {
	if a.opts.Renew == nil {
		apiError(w, http.StatusServiceUnavailable, "tokens are renewed by the embedded broker's device only")
		return
	}
	fresh, exp, err := a.opts.Renew(tok, c)
	if errors.Is(err, usersig.ErrTooManyTokens) {
		apiError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		a.opts.Logger.Error("renew token", "user", c.User, "err", err)
		apiError(w, http.StatusInternalServerError, "could not renew the token")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": fresh, "expires": exp.UnixMilli()})
}

// snapshot serves the picture of the caller's camera at ring time to a
// user the call rings, with the unguessable key the push carried.
func (a *API) snapshot(w http.ResponseWriter, r *http.Request, user string) {
	if a.opts.Snapshot == nil {
		apiError(w, http.StatusNotFound, "no snapshot")
		return
	}
	b, err := a.opts.Snapshot(r.PathValue("call"), user, r.URL.Query().Get("k"))
	if errors.Is(err, ErrNotRinging) {
		apiError(w, http.StatusGone, "this call is over, or not ringing you")
		return
	}
	if err != nil || len(b) == 0 {
		apiError(w, http.StatusNotFound, "no snapshot of this call")
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(b)
}

// visitorsOnly refuses the visitor log to a signed-in user who is not one
// of its readers (someone allowed to call the door, not to see who came).
func (a *API) visitorsOnly(h func(http.ResponseWriter, *http.Request, string)) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		if a.opts.VisitorReader != nil && !a.opts.VisitorReader(user) {
			apiError(w, http.StatusForbidden, "the visitor log is for the residents the doorbell rings")
			return
		}
		h(w, r, user)
	}
}

// maxVisitors bounds the entries of one answer of GET /api/visitors.
const maxVisitors = 1000

// visitors answers {"visitors": [entry, ...]}, newest first, at most
// ?limit= of them (default and at most maxVisitors).
func (a *API) visitors(w http.ResponseWriter, r *http.Request, _ string) {
	if a.opts.Visitors == nil {
		apiError(w, http.StatusNotFound, "the visitor log is off on this device (visitor_log.enabled)")
		return
	}
	limit := maxVisitors
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			apiError(w, http.StatusBadRequest, "limit: a positive whole number")
			return
		}
		limit = min(n, maxVisitors)
	}
	list := a.opts.Visitors.List()
	if len(list) > limit {
		list = list[:limit]
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"visitors": list})
}

// visitorFile serves a file of one entry of the visitor log (its picture
// or its voice message), read by read, as contentType.
func (a *API) visitorFile(what, contentType string, read func(Visitors, string) ([]byte, error)) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		id := r.PathValue("id")
		if a.opts.Visitors == nil || !visitorlog.ValidID(id) {
			apiError(w, http.StatusNotFound, "no such visitor")
			return
		}
		b, err := read(a.opts.Visitors, id)
		if errors.Is(err, visitorlog.ErrNotFound) {
			apiError(w, http.StatusNotFound, "no "+what+" of this visitor")
			return
		}
		if err != nil {
			a.opts.Logger.Error("visitor log "+what, "id", id, "err", err)
			apiError(w, http.StatusInternalServerError, "could not read the "+what)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
}
