package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/mqttsig/topic"
	"github.com/intercomd/intercomd/push"
	"github.com/intercomd/intercomd/usersig"
	"github.com/intercomd/intercomd/web"
)

// pusher rings residents whose app is closed: it follows the calls through
// the embedded broker (every invitation, answer, cancel and timeout) and
// pushes to their phones (Web Push, ntfy), and serves the actions of the
// notifications (/api/).
type pusher struct {
	d        *daemon
	store    *push.Store
	web      *push.Sender
	ntfy     *push.Ntfy
	notifier *push.Notifier
	// pressed is when the doorbell was last pressed (unix nanoseconds): a
	// ring of the device's own that follows within pressWindow is timed
	// from it.
	pressed atomic.Int64
	snaps   snapshots
	stop    chan struct{} // ends watchTokens
	done    chan struct{}
}

// pressWindow: an invitation of the device this soon after a press is that
// press's ring.
const pressWindow = 5 * time.Second

// startPush sets up push from the configuration; it needs the embedded
// broker (to follow calls and to act for a user). Called before the broker
// is made (OnMessage is wired then) and before HTTP is served.
func (d *daemon) startPush(stateDir string) error {
	p := &pusher{d: d}
	tokens, err := usersig.OpenRegistry(filepath.Join(stateDir, "tokens.json"))
	if err != nil {
		return err
	}
	d.tokens = tokens
	var obs push.Observer
	if d.cfg.HTTP.Metrics {
		if d.metrics == nil {
			d.metrics = newMetrics()
		}
		obs = pushMetrics{d.metrics.set}
	}
	log := d.log.With("component", "push")
	names := map[string]string{d.cfg.Device.User: d.cfg.Device.Name}
	for _, e := range d.cfg.Signaling.Directory {
		names[e.User] = e.Name
	}
	opts := push.NotifierOptions{Names: names, Snapshot: func(call, from string) string {
		if from != d.cfg.Device.User {
			return "" // the camera is the door's, not another caller's
		}
		return p.snaps.take(call)
	}}
	if d.cfg.Push.Contact != "" {
		keys, err := push.LoadOrCreateKeys(filepath.Join(stateDir, "vapid.json"))
		if err != nil {
			return err
		}
		store, err := push.OpenStore(push.StoreOptions{
			Path:     filepath.Join(stateDir, "push-subscriptions.json"),
			Insecure: d.env.getenv("INTERCOMD_PUSH_INSECURE") == "1", // tests with a local push service
		})
		if err != nil {
			return err
		}
		p.store = store
		p.web = push.NewSender(push.SenderOptions{Keys: keys, Contact: d.cfg.Push.Contact, Store: store, Logger: log, Observer: obs})
		opts.Web = p.web
		d.pushKey = keys.Public
		log.Info("web push on", "subscriptions", store.Len(), "vapid_key", keys.Public)
	} else {
		log.Info("web push off: set push.contact (mailto:you@example.org) to ring phones whose app is closed")
	}
	if len(d.cfg.Push.Ntfy) > 0 {
		var targets []push.NtfyTarget
		for _, n := range d.cfg.Push.Ntfy {
			targets = append(targets, push.NtfyTarget{User: n.User, Server: n.Server, Topic: n.Topic, Token: n.Token.Reveal()})
		}
		p.ntfy = push.NewNtfy(push.NtfyOptions{Targets: targets, AppURL: d.cfg.Push.AppURL, Logger: log, Observer: obs,
			Snapshot: func(call string) []byte { return p.snaps.get(call, "") }})
		opts.Ntfy = p.ntfy
	}
	p.notifier = push.NewNotifier(opts)
	d.push = p
	return nil
}

// close stops the channels, letting pushes under way finish.
func (p *pusher) close() {
	if p == nil {
		return
	}
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.notifier.Close()
	if p.web != nil {
		p.web.Close()
	}
	if p.ntfy != nil {
		p.ntfy.Close()
	}
}

// pushUsers are the users whose phones ring while their app is closed: a
// Web Push subscription or an ntfy topic.
func (d *daemon) pushUsers() []string {
	p := d.push
	if p == nil {
		return nil
	}
	var users []string
	if p.store != nil {
		users = p.store.Users()
	}
	for _, n := range d.cfg.Push.Ntfy {
		users = append(users, n.User)
	}
	return users
}

// pushable tells the calling core (on its loop) whether user rings while
// offline.
func (d *daemon) pushable(user string) bool {
	return slices.Contains(d.pushUsers(), user)
}

// onBrokerMessage follows one message through the embedded broker; it
// runs on the publisher's goroutine and only hands work on.
func (d *daemon) onBrokerMessage(n topic.Name, payload []byte) {
	p := d.push
	if p == nil {
		return
	}
	msg, err := calling.Decode(payload)
	if err != nil {
		return
	}
	now := time.Now()
	since := now
	if n.From == d.cfg.Device.User && msg.Type == calling.MsgInvite {
		if at := time.Unix(0, p.pressed.Load()); now.Sub(at) < pressWindow {
			since = at
			if d.metrics != nil {
				d.metrics.set.GetOrCreatePrometheusHistogram("intercomd_ring_invite_seconds").Update(now.Sub(at).Seconds())
			}
		}
	}
	p.notifier.Observe(n.From, n.To, msg, payload, since)
}

// pressedDoorbell records a doorbell press for the ring latency figures.
func (d *daemon) pressedDoorbell() {
	if d.push != nil {
		d.push.pressed.Store(time.Now().UnixNano())
	}
}

// mountAPI serves the app's HTTPS actions at /api/. They need the
// embedded broker's token secret; with an external broker only the push
// key is served. The app's /config.json is served to the holders of the
// device's tokens, whichever the broker.
func (d *daemon) mountAPI(mux *http.ServeMux) error {
	opts := web.APIOptions{Logger: d.log.With("component", "api"), VAPIDKey: d.pushKey, Accept: d.acceptToken}
	secret, err := d.userTokenSecret()
	if err != nil {
		return err
	}
	d.web.SetTokens(web.Tokens{Secret: secret, Accept: d.acceptToken})
	if d.broker != nil {
		opts.Secret = secret
		opts.Renew = func(tok string, c usersig.Claims) (string, time.Time, error) { return d.renewToken(secret, tok, c) }
		if d.visitors != nil {
			opts.Visitors = d.visitors.log
			opts.VisitorReader = func(user string) bool {
				r := d.visitorReaders.Load()
				return r != nil && slices.Contains(*r, user)
			}
		}
		if p := d.push; p != nil && p.stop == nil {
			p.stop, p.done = make(chan struct{}), make(chan struct{})
			go func() {
				defer close(p.done)
				d.watchTokens(secret, p.stop)
			}()
		}
	}
	if d.push != nil && d.broker != nil {
		opts.Store = d.push.store
		if d.broker != nil {
			opts.Decline, opts.Reinvite, opts.Snapshot, opts.Ringing = d.declineFor, d.reinviteFor, d.snapshotFor, d.appRinging
		}
	}
	mux.Handle("/api/", web.NewAPI(opts))
	return nil
}

// declineFor declines call for user, as their app would: a reject to the
// caller and to the user's own inbox, so that their other devices stop
// ringing too.
func (d *daemon) declineFor(call, user string) error {
	r, ok := d.push.notifier.Ringing(call, user)
	if !ok {
		return web.ErrNotRinging
	}
	b, err := calling.Encode(calling.Message{Type: calling.MsgReject, Call: call, Invite: r.Invite, Reason: calling.ReasonDeclined})
	if err != nil {
		return err
	}
	if err := d.broker.Publish(r.From, user, b); err != nil {
		return fmt.Errorf("reject to %s: %w", r.From, err)
	}
	if err := d.broker.Publish(user, user, b); err != nil {
		return fmt.Errorf("reject to %s's devices: %w", user, err)
	}
	d.log.Info("declined from a notification", "user", user, "call", call)
	return nil
}

// pushMetrics exports the pushes' attempts, failures by reason, and the
// time from the ring's start (the button press) to the push service
// accepting the push.
type pushMetrics struct{ set *vm.Set }

func (m pushMetrics) Attempt(channel string) {
	m.set.GetOrCreateCounter(series("intercomd_push_attempts_total", "channel", channel)).Inc()
}

func (m pushMetrics) Failure(channel, reason string) {
	m.set.GetOrCreateCounter(series("intercomd_push_failures_total", "channel", channel, "reason", reason)).Inc()
}

func (m pushMetrics) Accepted(channel string, d time.Duration) {
	m.set.GetOrCreatePrometheusHistogram(series("intercomd_ring_push_seconds", "channel", channel)).Update(d.Seconds())
}

// appRinging records, once per ring, the time from the ring's start (the
// button press) to the first app of user ringing, which the apps report
// (every device of the user rings).
func (d *daemon) appRinging(call, user string) error {
	since, first, ok := d.push.notifier.AppRinging(call, user)
	if !ok {
		return web.ErrNotRinging
	}
	if d.metrics != nil && first {
		d.metrics.set.GetOrCreatePrometheusHistogram("intercomd_ring_app_seconds").Update(since.Seconds())
	}
	return nil
}

// reinviteFor delivers the invitation of call to user's inbox again, as
// the caller sent it: an app opened by a notification's Answer connects
// after the invitation went out, and rings (and answers) with it. The
// user's devices that already ring ignore the second copy.
func (d *daemon) reinviteFor(call, user string) error {
	r, ok := d.push.notifier.Ringing(call, user)
	if !ok {
		return web.ErrNotRinging
	}
	if err := d.broker.Publish(user, r.From, r.Invitation); err != nil {
		return fmt.Errorf("invitation to %s: %w", user, err)
	}
	return nil
}
