package calling

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

// world runs several machines against a simulated broker and media layer,
// with a simulated clock: enough to check end-to-end properties of the
// protocol (both sides agree, ringing ends, nothing outlives its call)
// without any I/O. The real transports are tested in package agent.
type world struct {
	t        testing.TB
	now      time.Time
	nodes    []*node
	groups   map[string][]string
	queue    []queued // messages and media news in flight, in order
	timers   map[*node]map[Timer]time.Time
	links    map[link]bool // media between a hub node and a party node, per call
	dropNext bool
}

type node struct {
	user, session string
	m             *Machine
	tone          Tone
	joined        map[string]bool // calls whose media this node joined
	events        []string
}

// queued is work in flight; only signaling messages may be lost (media
// loss is always noticed, in the end, by ICE).
type queued struct {
	f       func()
	message bool
}

type link struct {
	call      string
	hub, peer *node
}

func newWorld(t testing.TB) *world {
	return &world{
		t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		groups: map[string][]string{}, timers: map[*node]map[Timer]time.Time{}, links: map[link]bool{},
	}
}

func (w *world) add(user, session string, opts ...func(*Config)) *node {
	n := &node{user: user, session: session, joined: map[string]bool{}}
	id := 0
	cfg := Config{User: user, Session: session, NewID: func() string {
		id++
		return fmt.Sprintf("%s%s%d", user, session, id)
	}}
	for _, o := range opts {
		o(&cfg)
	}
	n.m = New(cfg)
	w.nodes = append(w.nodes, n)
	w.timers[n] = map[Timer]time.Time{}
	w.step(n, Login{})
	return n
}

func (w *world) step(n *node, in Input) {
	for _, e := range n.m.Step(w.now, in) {
		w.apply(n, e)
	}
	w.check(n)
}

func (w *world) apply(n *node, e Effect) {
	switch e := e.(type) {
	case Send:
		b, err := Encode(e.Msg)
		if err != nil {
			w.t.Fatalf("%s sends a message that does not encode: %v", n.user, err)
		}
		msg, err := Decode(b)
		if err != nil {
			w.t.Fatalf("%s sends a message that does not decode: %v", n.user, err)
		}
		if w.dropNext {
			w.dropNext = false
			return
		}
		for _, to := range w.nodes {
			if (e.To != "" && to.user == e.To) || (e.Group != "" && slices.Contains(w.groups[e.Group], to.user)) {
				to, from := to, n.user
				w.queue = append(w.queue, queued{f: func() { w.step(to, Received{From: from, Msg: msg}) }, message: true})
			}
		}
	case Emit:
		n.events = append(n.events, DescribeEvent(e.Event))
	case StartTimer:
		if e.Timer.Kind == TimerRing && e.After > n.m.cfg.InviteTimeout+RingGrace {
			w.t.Fatalf("%s/%s rings for %s, longer than its own timeout %s and the grace", n.user, n.session, e.After, n.m.cfg.InviteTimeout)
		}
		w.timers[n][e.Timer] = w.now.Add(e.After)
	case StopTimer:
		delete(w.timers[n], e.Timer)
	case Disconnect:
	case DoorOpen:
	case Media:
		w.media(n, e.Do)
	default:
		w.t.Fatalf("unknown effect %T", e)
	}
}

// media simulates a media layer that always connects, one connection per
// device (node).
func (w *world) media(n *node, d MediaEffect) {
	switch d := d.(type) {
	case JoinMedia:
		n.joined[d.Call] = true
		w.later(func() { w.step(n, MediaJoined{Call: d.Call}) })
	case ConnectPeer:
		for _, p := range w.nodes {
			// A preview connects before the party joined its media; the
			// connection is then reused by the call (PeerJoined again).
			if p.user == d.User && p.session == d.Session && p.m.CallID() == d.Call && (p.joined[d.Call] || d.Preview || w.links[link{d.Call, n, p}]) {
				l := link{d.Call, n, p}
				w.links[l] = true
				p.joined[d.Call] = true
				w.later(func() {
					if w.links[l] && p.m.CallID() == d.Call {
						w.step(n, PeerJoined{Call: d.Call, User: p.user, Session: p.session})
						w.step(p, PeerJoined{Call: d.Call, User: n.user, Session: n.session})
					}
				})
				return
			}
		}
	case DisconnectPeer:
		for l := range w.links {
			if l.call == d.Call && l.hub == n && l.peer.user == d.User && l.peer.session == d.Session {
				delete(w.links, l)
				w.later(func() { w.step(l.peer, PeerLeft{Call: d.Call, User: n.user, Session: n.session}) })
			}
		}
	case LeaveMedia:
		delete(n.joined, d.Call)
		for l := range w.links {
			if l.call != d.Call || (l.hub != n && l.peer != n) {
				continue
			}
			delete(w.links, l)
			other, gone := l.peer, l.hub
			if l.peer == n {
				other, gone = l.hub, l.peer
			}
			w.later(func() { w.step(other, PeerLeft{Call: d.Call, User: gone.user, Session: gone.session}) })
		}
	case Ring:
		n.tone = d.Tone
	}
}

// later queues work behind the messages already in flight.
func (w *world) later(f func()) { w.queue = append(w.queue, queued{f: f}) }

// lose drops the first signaling message in flight, if any.
func (w *world) lose() {
	for i, q := range w.queue {
		if q.message {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			return
		}
	}
}

// check asserts the invariants that must hold after every step.
func (w *world) check(n *node) {
	if c := n.m.call; c != nil && !c.isHub && n.m.cfg.Callers != nil && !slices.Contains(n.m.cfg.Callers, c.hub) {
		w.t.Fatalf("%s/%s is %s for %s, who is not among its callers %v", n.user, n.session, n.m.State(), c.hub, n.m.cfg.Callers)
	}
	if n.m.State() == Idle {
		if n.tone != ToneNone {
			w.t.Fatalf("%s/%s is idle but still plays %s", n.user, n.session, n.tone)
		}
		for c := range n.joined {
			w.t.Fatalf("%s/%s is idle but still holds media of call %s", n.user, n.session, c)
		}
	}
}

// deliver runs everything in flight, including what it causes.
func (w *world) deliver() {
	for guard := 0; len(w.queue) > 0; guard++ {
		if guard > 100000 {
			w.t.Fatal("messages never settle")
		}
		q := w.queue[0]
		w.queue = w.queue[1:]
		q.f()
	}
}

// advance moves the clock, firing due timers in order.
func (w *world) advance(d time.Duration) {
	end := w.now.Add(d)
	for {
		w.deliver()
		var next *node
		var nt Timer
		var at time.Time
		for _, n := range w.nodes {
			for t, due := range w.timers[n] {
				if !due.After(end) && (next == nil || due.Before(at)) {
					next, nt, at = n, t, due
				}
			}
		}
		if next == nil {
			break
		}
		delete(w.timers[next], nt)
		if at.After(w.now) {
			w.now = at
		}
		w.step(next, TimerFired{Timer: nt})
	}
	w.now = end
}

func (w *world) states() string {
	var s []string
	for _, n := range w.nodes {
		s = append(s, fmt.Sprintf("%s/%s:%s", n.user, n.session, n.m.State()))
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

func (w *world) allIdle() bool {
	for _, n := range w.nodes {
		if n.m.State() != Idle {
			return false
		}
	}
	return true
}

// breakLink fails the i-th media link (in a stable order) for good: the hub
// sees the party's device leave with ReasonMedia, and the party asks to
// rejoin.
func (w *world) breakLink(i int) {
	var ls []link
	for l := range w.links {
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return
	}
	sort.Slice(ls, func(a, b int) bool {
		return fmt.Sprint(ls[a].call, ls[a].hub.user, ls[a].hub.session, ls[a].peer.user, ls[a].peer.session) <
			fmt.Sprint(ls[b].call, ls[b].hub.user, ls[b].hub.session, ls[b].peer.user, ls[b].peer.session)
	})
	l := ls[i%len(ls)]
	delete(w.links, l)
	w.later(func() {
		w.step(l.hub, PeerLeft{Call: l.call, User: l.peer.user, Session: l.peer.session, Reason: ReasonMedia})
		// The party's app asks to be taken back, as the web app does.
		w.step(l.peer, Rejoin{Call: l.call})
	})
}
