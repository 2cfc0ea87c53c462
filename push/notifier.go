package push

import (
	"slices"
	"sync"
	"time"

	"github.com/intercomd/intercomd/calling"
)

// maxRings bounds the rings a Notifier follows at once; the oldest is
// forgotten past it (a hostile client inviting without end costs nothing
// more).
const maxRings = 64

// ringGrace is how long after its timeout a ring that nothing ended is
// declared missed.
const ringGrace = 5 * time.Second

// NotifierOptions configures a Notifier.
type NotifierOptions struct {
	Web  *Sender // nil: no Web Push
	Ntfy *Ntfy   // nil: no ntfy
	// Names maps user IDs to the names shown ("Front door").
	Names map[string]string
	// Snapshot returns the path of the picture of the caller's camera at
	// ring time (a call from the device itself), or "".
	Snapshot func(call, from string) string
	// OnRing is told when a push for a new ring was handed to the channels.
	OnRing func(user, call string)
	Now    func() time.Time
}

type ring struct {
	call, invite, user, from string
	raw                      []byte // the invitation as the caller sent it
	since                    time.Time
	reported                 bool // an app said it rings
	timer                    *time.Timer
}

// Ring is a call ringing a user, as Ringing reports it.
type Ring struct {
	From, Invite string
	// Invitation is the invite message as the caller published it.
	Invitation []byte
}

// Notifier turns calling wire messages into pushes: a Ring to a user an
// invitation rings, an End when it stops ringing them. Observe it with
// every signaling message the device sees (its own, or all of the
// embedded broker's).
type Notifier struct {
	opts  NotifierOptions
	mu    sync.Mutex
	rings []*ring
}

// NewNotifier returns a Notifier.
func NewNotifier(opts NotifierOptions) *Notifier {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Notifier{opts: opts}
}

// Observe follows one message from user from, sent to user to (a direct
// message) or to a group (to ""); since is when the ring began (the button
// press for the device's own calls). It returns at once.
// raw is the message as published.
func (n *Notifier) Observe(from, to string, msg calling.Message, raw []byte, since time.Time) {
	switch msg.Type {
	case calling.MsgInvite:
		timeout := time.Duration(msg.TimeoutMS) * time.Millisecond
		if timeout <= 0 {
			timeout = calling.DefaultInviteTimeout
		}
		for _, u := range msg.Users {
			if u != from && (to == "" || to == u) {
				n.start(from, u, msg, raw, timeout, since)
			}
		}
	case calling.MsgAccept:
		n.end(func(r *ring) bool { return r.user == from && r.call == msg.Call }, EndAnswered)
	case calling.MsgReject:
		n.end(func(r *ring) bool { return r.user == from && r.call == msg.Call }, EndDeclined)
	case calling.MsgCancel, calling.MsgTimeout:
		reason := EndMissed
		if msg.Reason == calling.ReasonElsewhere {
			reason = EndElsewhere
		}
		n.end(func(r *ring) bool {
			return r.from == from && r.call == msg.Call && (to == "" || r.user == to) && (msg.Invite == "" || r.invite == msg.Invite)
		}, reason)
	case calling.MsgLeave, calling.MsgHangup:
		// The caller left: whoever still rings missed it.
		n.end(func(r *ring) bool { return r.from == from && r.call == msg.Call }, EndMissed)
	}
}

func (n *Notifier) start(from, user string, msg calling.Message, raw []byte, timeout time.Duration, since time.Time) {
	now := n.opts.Now()
	n.mu.Lock()
	if slices.ContainsFunc(n.rings, func(r *ring) bool { return r.user == user && r.call == msg.Call }) {
		n.mu.Unlock()
		return // delivered twice, or to a group and directly
	}
	r := &ring{call: msg.Call, invite: msg.Invite, user: user, from: from, raw: raw, since: since}
	r.timer = time.AfterFunc(timeout+ringGrace, func() {
		n.end(func(o *ring) bool { return o == r }, EndMissed)
	})
	n.rings = append(n.rings, r)
	if len(n.rings) > maxRings {
		n.rings[0].timer.Stop()
		n.rings = n.rings[1:]
	}
	n.mu.Unlock()
	name := n.name(from)
	p := Payload{
		V: 1, Kind: KindRing, Call: msg.Call, Invite: msg.Invite, From: from, Name: name,
		Media: msg.Media.String(), At: now.UnixMilli(), Expires: now.Add(timeout).UnixMilli(),
		Title: name, Body: "is calling",
	}
	if n.opts.Snapshot != nil {
		p.Snapshot = n.opts.Snapshot(msg.Call, from)
	}
	n.send(user, p, timeout, since)
	if n.opts.OnRing != nil {
		n.opts.OnRing(user, msg.Call)
	}
}

func (n *Notifier) end(match func(*ring) bool, reason string) {
	n.mu.Lock()
	var ended []*ring
	n.rings = slices.DeleteFunc(n.rings, func(r *ring) bool {
		if match(r) {
			r.timer.Stop()
			ended = append(ended, r)
			return true
		}
		return false
	})
	n.mu.Unlock()
	now := n.opts.Now()
	for _, r := range ended {
		name := n.name(r.from)
		p := Payload{V: 1, Kind: KindEnd, Call: r.call, Invite: r.invite, From: r.from, Name: name, At: now.UnixMilli(), Reason: reason}
		switch reason {
		case EndMissed:
			p.Title = "Missed call from " + name
		case EndElsewhere:
			p.Title = "Answered by someone else"
		default:
			p.Title = name
		}
		// The end may wait at the push service as long as a ring could
		// have: it replaces the ring there (same Topic).
		n.send(r.user, p, time.Hour, r.since)
	}
}

func (n *Notifier) send(user string, p Payload, ttl time.Duration, since time.Time) {
	if n.opts.Web != nil {
		n.opts.Web.Send(Message{User: user, Payload: p.encode(), TTL: ttl, Topic: topicOf(p.Call), Since: since})
	}
	if n.opts.Ntfy != nil {
		n.opts.Ntfy.Publish(user, p, since)
	}
}

func (n *Notifier) name(user string) string {
	if s := n.opts.Names[user]; s != "" {
		return s
	}
	return user
}

// Ringing reports whether call rings user and, if so, who calls and with
// which invitation (for authorising and carrying out a notification's
// action).
func (n *Notifier) Ringing(call, user string) (Ring, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.rings {
		if r.call == call && r.user == user {
			return Ring{From: r.from, Invite: r.invite, Invitation: r.raw}, true
		}
	}
	return Ring{}, false
}

// AppRinging notes that an app of user rings for call: it returns how long
// after the ring's start, first true for the first of the user's devices
// to say so, and ok false when the call does not ring the user.
func (n *Notifier) AppRinging(call, user string) (since time.Duration, first, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.rings {
		if r.call == call && r.user == user {
			first, r.reported = !r.reported, true
			return n.opts.Now().Sub(r.since), first, true
		}
	}
	return 0, false, false
}

// Close forgets every ring.
func (n *Notifier) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.rings {
		r.timer.Stop()
	}
	n.rings = nil
}
