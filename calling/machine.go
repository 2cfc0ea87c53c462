package calling

import (
	"slices"
	"sort"
	"time"
)

// Config configures a Machine.
type Config struct {
	// User is this machine's user ID; Session tells its login apart from
	// the same user's other devices.
	User    string
	Session string
	// InviteTimeout is how long a caller waits for each invitee (default
	// 30 s). A callee rings for the caller's timeout plus RingGrace.
	InviteTimeout time.Duration
	// MultiDevice lets the same user stay logged in on several devices; when
	// false a new login makes the others log out (KickedOffline).
	MultiDevice bool
	// DoorUsers may open this machine's door during a call it is the hub of.
	DoorUsers []string
	// Callers, when not nil, are the only users who may call this machine:
	// an invitation from anyone else is refused at once, whatever the
	// state, without ringing (a reject with ReasonCallNotAllowed to the
	// caller, and a CallRefused event). nil lets anyone call (a phone); a
	// door station lists the people it knows, so that a stranger holding
	// a token can neither ring it nor be answered by a visitor's press.
	Callers []string
	// NewID returns a fresh ID for calls and invitations: unique, and valid
	// for ValidID. The driver supplies a random one; tests a counter.
	NewID func() string
	// Pushable, when set, reports users whose phones ring while their app
	// is offline (the driver pushes to them): an invitation to such a user
	// is sent and rings until answered or timed out, even while the user's
	// presence says offline. It must be a pure query of the driver's
	// state; nil means nobody.
	Pushable func(user string) bool
	// RejoinGrace is how long the hub keeps a party whose media dropped
	// (its app was reloaded, its connection failed for good) before it
	// leaves the call: the party's user may take the call back on a
	// device (Rejoin) meanwhile. Zero: a party whose media drops leaves
	// at once.
	RejoinGrace time.Duration
}

// Defaults.
const (
	DefaultInviteTimeout = 30 * time.Second
	// RingGrace is added to the caller's timeout for the callee's own safety
	// timer, so the caller's verdict normally arrives first.
	RingGrace = 2 * time.Second
	// SwitchToAudioTimeout bounds the wait for the peer's reply.
	SwitchToAudioTimeout = 10 * time.Second
)

type partyState int

const (
	partyPending  partyState = iota + 1 // invited, no answer yet
	partyAccepted                       // accepted, media not up yet
	partyPresent                        // media joined
	partyAway                           // hub: was in the call, its media dropped; may rejoin until awayUntil
)

type party struct {
	state  partyState
	invite string // hub: the invite ID sent to this party
	// hub: the party's devices (login sessions) the hub has media with:
	// those previewing while it is pending (early media), then the one
	// that accepted.
	previews []string
	session  string
	// hub, while pending: the invitation as sent, and when it expires, to
	// send it again when the party's presence comes online.
	invitation Message
	deadline   time.Time
	// hub: the party's media joined at least once (it may rejoin), and
	// while away, when its grace period ends.
	wasIn     bool
	awayUntil time.Time
}

// MaxPreviews is how many devices of one invitee may preview a call at
// once; a further device's preview is ignored.
const MaxPreviews = 4

// device reports whether the hub has media with the party's device session:
// one previewing while the party is pending, the one that accepted after.
func (p *party) device(session string) bool {
	if p.state == partyPending {
		return slices.Contains(p.previews, session)
	}
	return session == p.session
}

// call is everything that lives exactly as long as one call. It is dropped
// whole when the call ends, so no role or field outlives it.
type call struct {
	id      string
	hub     string // the party that placed the call; every other party connects to it
	isHub   bool
	typ     CallType
	group   string
	invite  string // callee: the invitation I am answering
	parties map[string]*party
	// callee only
	preview   bool                   // Preview asked: the hub's media may arrive while ringing
	accepting bool                   // Accept given, waiting for MediaJoined
	accepted  bool                   // accept sent
	members   map[string]MemberState // relayed states of the other invitees
	started   time.Time              // first remote party joined; zero before
	switching bool                   // a switch-to-audio request of mine is pending
	ringGroup bool                   // hub: the first to accept takes the call, the others are cancelled
	capped    bool                   // callee: the caller asked to ring longer than InviteTimeout
	rejoining bool                   // callee: a Rejoin is under way (the hub's media is not back yet)
}

// Machine is the calling state machine. See the package documentation.
type Machine struct {
	cfg      Config
	loggedIn bool
	call     *call
	offline  map[string]bool // users whose retained presence says offline
	now      time.Time
	out      []Effect
}

// New returns an idle, logged-out Machine.
func New(cfg Config) *Machine {
	if cfg.InviteTimeout <= 0 {
		cfg.InviteTimeout = DefaultInviteTimeout
	}
	return &Machine{cfg: cfg, offline: make(map[string]bool)}
}

// State returns the effective state.
func (m *Machine) State() State {
	c := m.call
	switch {
	case c == nil:
		return Idle
	case c.isHub:
		// Once anyone joined the call stays in progress until it ends,
		// even if the only party present leaves while others are pending.
		if !c.started.IsZero() {
			return InCall
		}
		return Dialing
	case c.parties[c.hub] != nil && c.parties[c.hub].state == partyPresent:
		return InCall
	default:
		return Ringing
	}
}

// View is what the owner of a Machine may read of it between steps, for
// choosing an input from the state of the call (a door station's button).
type View struct {
	State State
	// Call is the current call's ID and Hub the party that placed it
	// (this user when it did); both "" when idle.
	Call, Hub string
	// Answered: this side accepted the invitation of the current call;
	// its media may still be connecting (State is then Ringing).
	Answered bool
}

// View returns the machine's view.
func (m *Machine) View() View {
	v := View{State: m.State()}
	if c := m.call; c != nil {
		v.Call, v.Hub = c.id, c.hub
		v.Answered = !c.isHub && (c.accepting || c.accepted)
	}
	return v
}

// LoggedIn reports whether the machine is logged in.
func (m *Machine) LoggedIn() bool { return m.loggedIn }

// CallID returns the current call's ID, or "" when idle.
func (m *Machine) CallID() string {
	if m.call == nil {
		return ""
	}
	return m.call.id
}

// Hub returns the current call's hub (this user when it placed the call).
func (m *Machine) Hub() string {
	if m.call == nil {
		return ""
	}
	return m.call.hub
}

// Parties returns the remote parties of the current call that are present
// (media joined), sorted.
func (m *Machine) Parties() []string { return m.partiesIn(partyPresent) }

// Pending returns the invitees of the current call that have not answered.
func (m *Machine) Pending() []string { return m.partiesIn(partyPending) }

// partiesIn returns the parties of the current call in state st, sorted.
func (m *Machine) partiesIn(st partyState) []string {
	if m.call == nil {
		return nil
	}
	var us []string
	for u, p := range m.call.parties {
		if p.state == st {
			us = append(us, u)
		}
	}
	sort.Strings(us)
	return us
}

// Step applies one input at time now and returns the effects to carry out,
// in order.
func (m *Machine) Step(now time.Time, in Input) []Effect {
	m.now = now
	m.out = nil
	before := m.State()
	m.step(in)
	if after := m.State(); after != before {
		m.emit(StateChanged{From: before, To: after})
	}
	return m.out
}

func (m *Machine) step(in Input) {
	switch in := in.(type) {
	case Login:
		m.login()
	case Logout:
		m.logout()
	case Received:
		if m.loggedIn {
			m.received(in)
		}
	case Presence:
		m.presence(in)
	case Configure:
		if in.InviteTimeout > 0 {
			m.cfg.InviteTimeout = in.InviteTimeout
		}
		if in.DoorUsers != nil {
			m.cfg.DoorUsers = slices.Clone(in.DoorUsers)
		}
		if in.Callers != nil {
			m.cfg.Callers = slices.Clone(in.Callers)
		}
	case LinkChanged:
		// Nothing to do: the caller's timers and the callee's safety timer
		// end whatever was ringing if the link stays down.
	case TimerFired:
		m.timer(in.Timer)
	case MediaJoined:
		m.mediaJoined(in)
	case PeerJoined:
		m.peerJoined(in)
	case PeerLeft:
		m.peerLeft(in.Call, in.User, in.Session, in.Reason, true)
	case MediaFailed:
		if c := m.call; c != nil && c.id == in.Call {
			m.emit(Error{Err: in.Err})
			m.hangupWith(ReasonMedia)
		}
	case MediaOut:
		m.mediaOut(in)
	case MediaStatus:
		if m.call != nil && m.call.id == in.Call {
			m.emit(in.Event)
		}
	default:
		if !m.loggedIn {
			m.fail(errorf(ErrNotLoggedIn, "%T needs a login", in))
			return
		}
		m.command(in)
	}
}

func (m *Machine) command(in Input) {
	switch in := in.(type) {
	case Call:
		m.place(in)
	case Accept:
		m.accept()
	case Preview:
		m.preview()
	case Reject:
		m.decline(ReasonDeclined)
	case LineBusy:
		m.decline(ReasonBusy)
	case Hangup:
		m.hangup()
	case SwitchToAudio:
		m.switchToAudio()
	case OpenDoor:
		m.openDoor()
	case Control:
		m.media(in.Control)
	case Rejoin:
		m.rejoin(in)
	default:
		m.fail(errorf(ErrInvalid, "unknown input %T", in))
	}
}

// --- effects ---

func (m *Machine) emit(e Event)        { m.out = append(m.out, Emit{Event: e}) }
func (m *Machine) fail(err error)      { m.emit(Error{Err: err}) }
func (m *Machine) media(e MediaEffect) { m.out = append(m.out, Media{Do: e}) }
func (m *Machine) stopTimer(t Timer)   { m.out = append(m.out, StopTimer{Timer: t}) }
func (m *Machine) startTimer(t Timer, d time.Duration) {
	m.out = append(m.out, StartTimer{Timer: t, After: d})
}

func (m *Machine) send(to string, msg Message) {
	msg.V = ProtocolVersion
	msg.Session = m.cfg.Session
	m.out = append(m.out, Send{To: to, Msg: msg})
}

func (m *Machine) sendGroup(group string, msg Message) {
	msg.V = ProtocolVersion
	msg.Session = m.cfg.Session
	m.out = append(m.out, Send{Group: group, Msg: msg})
}

// --- login ---

func (m *Machine) login() {
	m.loggedIn = true
	// Tell my other devices; unless multi-device is on, they log out.
	m.send(m.cfg.User, Message{Type: MsgLogin})
}

func (m *Machine) logout() {
	if m.call != nil {
		m.hangupWith(ReasonLogout)
	}
	m.loggedIn = false
}

// --- placing calls (hub) ---

func (m *Machine) place(in Call) {
	if in.Type != Audio && in.Type != Video {
		m.fail(errorf(ErrInvalid, "call type must be audio or video"))
		return
	}
	if in.Group != "" && !ValidID(in.Group) {
		m.fail(errorf(ErrInvalid, "group %q is not a valid ID", in.Group))
		return
	}
	var users []string
	for _, u := range in.Users {
		switch {
		case !ValidID(u):
			m.fail(errorf(ErrInvalid, "user %q is not a valid ID", u))
			return
		case u == m.cfg.User:
			m.fail(errorf(ErrInvalid, "cannot call oneself"))
			return
		case !slices.Contains(users, u):
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		m.fail(errorf(ErrInvalid, "no user to call"))
		return
	}
	c := m.call
	if c != nil && !c.isHub {
		if m.State() == Ringing {
			m.fail(errorf(ErrBusy, "cannot place a call while ringing"))
		} else {
			m.fail(errorf(ErrNotAllowed, "only the party that placed the call can add participants"))
		}
		return
	}
	if c != nil && in.Group != c.group {
		in.Group = c.group // a call keeps its group
	}
	if c == nil {
		c = &call{id: m.cfg.NewID(), hub: m.cfg.User, isHub: true, typ: in.Type, group: in.Group, ringGroup: in.RingGroup, parties: map[string]*party{}}
	}
	// Only users not already pending or present.
	var fresh []string
	for _, u := range users {
		if c.parties[u] == nil {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) == 0 {
		if m.call == nil {
			m.fail(errorf(ErrInvalid, "no user to call"))
		}
		return
	}
	if len(c.parties)+len(fresh)+1 > MaxParties {
		m.fail(errorf(ErrInvalid, "a call holds at most %d parties", MaxParties))
		return
	}
	var online []string
	for _, u := range fresh {
		if m.offline[u] && !m.pushable(u) {
			m.emit(NoResp{User: u})
		} else {
			online = append(online, u)
		}
	}
	isNew := m.call == nil
	if isNew {
		if len(online) == 0 {
			m.emit(CallEnd{Reason: ReasonOffline})
			return
		}
		m.call = c
		m.media(JoinMedia{Call: c.id, Type: c.typ, Hub: m.cfg.User, IsHub: true})
		m.media(Ring{Tone: ToneRingback})
	}
	for _, u := range online {
		c.parties[u] = &party{state: partyPending}
	}
	timeout := int(m.cfg.InviteTimeout / time.Millisecond)
	invitees := c.invitees()
	deadline := m.now.Add(m.cfg.InviteTimeout)
	if c.group != "" && len(online) > 0 {
		msg := Message{Type: MsgInvite, Call: c.id, Invite: m.cfg.NewID(), Users: online, Group: c.group, Media: c.typ, TimeoutMS: timeout}
		for _, u := range online {
			p := c.parties[u]
			p.invite, p.invitation, p.deadline = msg.Invite, msg, deadline
		}
		m.sendGroup(c.group, msg)
	} else {
		for _, u := range online {
			msg := Message{Type: MsgInvite, Call: c.id, Invite: m.cfg.NewID(), Users: invitees, Media: c.typ, TimeoutMS: timeout}
			p := c.parties[u]
			p.invite, p.invitation, p.deadline = msg.Invite, msg, deadline
			m.send(u, msg)
		}
	}
	for _, u := range online {
		m.startTimer(Timer{Kind: TimerInvite, Call: c.id, Invite: c.parties[u].invite, User: u}, m.cfg.InviteTimeout)
	}
	if !isNew && len(online) > 0 {
		for _, u := range online {
			m.relay(u, MemberInvited)
		}
		m.emit(InviteeListUpdate{Users: invitees})
	}
	m.endIfEmpty(ReasonOffline)
}

// invitees lists every party of a hub's call but the hub, sorted.
func (c *call) invitees() []string {
	us := make([]string, 0, len(c.parties))
	for u := range c.parties {
		us = append(us, u)
	}
	sort.Strings(us)
	return us
}

// relay tells the other parties of a hub's call that user's state changed
// (the original relays this for calls without a group; intercomd does it for
// every call, once to the group topic when there is one).
func (m *Machine) relay(user string, status MemberState) {
	c := m.call
	msg := Message{Type: MsgMember, Call: c.id, User: user, Status: status}
	if c.group != "" {
		m.sendGroup(c.group, msg)
		return
	}
	for _, u := range c.invitees() {
		if u != user {
			m.send(u, msg)
		}
	}
}

// removeParty drops u from a hub's call and relays why.
func (m *Machine) removeParty(u string, status MemberState) {
	c := m.call
	p := c.parties[u]
	if p.state == partyPending {
		m.stopTimer(Timer{Kind: TimerInvite, Call: c.id, Invite: p.invite, User: u})
	}
	m.disconnect(u, p)
	delete(c.parties, u)
	m.relay(u, status)
}

// disconnect tears down the hub's media with every device of party u.
func (m *Machine) disconnect(u string, p *party) {
	sessions := p.previews
	if p.state != partyPending {
		sessions = []string{p.session}
	}
	for _, s := range sessions {
		m.media(DisconnectPeer{Call: m.call.id, User: u, Session: s})
	}
}

// endIfEmpty ends a hub's call when no remote party is left and nobody is
// pending.
func (m *Machine) endIfEmpty(reason Reason) {
	if c := m.call; c != nil && c.isHub && len(c.parties) == 0 {
		m.finish(reason)
	}
}

// finish drops the call: stop ringing, release media, report the end.
func (m *Machine) finish(reason Reason) {
	c := m.call
	var d time.Duration
	if !c.started.IsZero() {
		d = m.now.Sub(c.started)
	}
	if c.switching {
		m.stopTimer(Timer{Kind: TimerSwitchAudio, Call: c.id})
	}
	m.media(Ring{Tone: ToneNone})
	m.media(LeaveMedia{Call: c.id})
	m.call = nil
	m.emit(CallEnd{Reason: reason, Duration: d})
}

// --- answering (callee) ---

func (m *Machine) accept() {
	c := m.call
	if c == nil || c.isHub || c.accepting || c.accepted {
		m.fail(errorf(ErrNoCall, "no invitation to accept"))
		return
	}
	c.accepting = true
	m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
	m.media(Ring{Tone: ToneNone})
	m.media(JoinMedia{Call: c.id, Type: c.typ, Hub: c.hub})
	m.startTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite}, m.cfg.InviteTimeout)
}

// preview asks the hub for early media while ringing.
func (m *Machine) preview() {
	c := m.call
	if c == nil || c.isHub || c.accepting || c.accepted {
		m.fail(errorf(ErrNoCall, "no invitation to preview"))
		return
	}
	if c.preview {
		return
	}
	c.preview = true
	m.send(c.hub, Message{Type: MsgPreview, Call: c.id, Invite: c.invite})
}

func (m *Machine) mediaJoined(in MediaJoined) {
	c := m.call
	if c == nil || c.id != in.Call {
		return
	}
	if c.isHub {
		if in.Err != nil {
			m.fail(in.Err)
			m.hangupWith(ReasonMedia)
		}
		return
	}
	if !c.accepting {
		return
	}
	c.accepting = false
	if c.rejoining {
		m.rejoinJoined(in.Err)
		return
	}
	if in.Err != nil {
		m.fail(in.Err)
		m.send(c.hub, Message{Type: MsgReject, Call: c.id, Invite: c.invite, Reason: ReasonMedia})
		m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
		m.finish(ReasonMedia)
		return
	}
	c.accepted = true
	msg := Message{Type: MsgAccept, Call: c.id, Invite: c.invite}
	m.send(c.hub, msg)
	m.send(m.cfg.User, msg) // my other devices stop ringing
}

func (m *Machine) decline(reason Reason) {
	c := m.call
	if c == nil || c.isHub || c.accepting || c.accepted {
		m.fail(errorf(ErrNoCall, "no invitation to decline"))
		return
	}
	msg := Message{Type: MsgReject, Call: c.id, Invite: c.invite, Reason: reason}
	m.send(c.hub, msg)
	m.send(m.cfg.User, msg)
	m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
	m.finish(reason)
}

// --- hanging up ---

func (m *Machine) hangup() {
	if m.call == nil {
		m.fail(errorf(ErrNoCall, "nothing to hang up"))
		return
	}
	m.hangupWith(ReasonHangup)
}

// hangupWith ends the current call from this side, whatever its state: a
// ringing callee declines, a callee in a call leaves, and the hub cancels
// every pending invitation (each with its own invite ID) and tells the
// parties in the call that it left, with the end notice.
func (m *Machine) hangupWith(reason Reason) {
	c := m.call
	if !c.isHub {
		if !c.accepting && !c.accepted {
			m.decline(ReasonDeclined)
			return
		}
		if m.State() != InCall {
			m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
		}
		m.send(c.hub, Message{Type: MsgLeave, Call: c.id, Reason: reason})
		m.finish(reason)
		return
	}
	var d int
	if !c.started.IsZero() {
		d = int(m.now.Sub(c.started) / time.Second)
	}
	cancelled := map[string]bool{}
	for _, u := range c.invitees() {
		p := c.parties[u]
		if p.state == partyPending {
			m.stopTimer(Timer{Kind: TimerInvite, Call: c.id, Invite: p.invite, User: u})
			if c.group != "" {
				if !cancelled[p.invite] {
					cancelled[p.invite] = true
					m.sendGroup(c.group, Message{Type: MsgCancel, Call: c.id, Invite: p.invite})
				}
			} else {
				m.send(u, Message{Type: MsgCancel, Call: c.id, Invite: p.invite})
			}
			continue
		}
		m.send(u, Message{Type: MsgLeave, Call: c.id, Reason: reason})
		if p.state == partyPresent {
			m.send(u, Message{Type: MsgHangup, Call: c.id, Duration: d})
		}
	}
	m.finish(reason)
}

// --- incoming messages ---

func (m *Machine) received(r Received) {
	msg := r.Msg
	if msg.ToSession != "" && msg.ToSession != m.cfg.Session {
		return // for another device of my user
	}
	if r.From == m.cfg.User {
		m.fromMyself(msg)
		return
	}
	switch msg.Type {
	case MsgInvite:
		m.invited(r)
		return
	case MsgLogin:
		return // another user's login is none of my business
	case MsgRejoin:
		if msg.OK == nil {
			m.rejoinRequest(r)
			return
		}
	}
	c := m.call
	if c == nil {
		return // stale: arriving while idle
	}
	if c.isHub {
		m.receivedAsHub(r)
	} else {
		m.receivedAsCallee(r)
	}
}

// fromMyself handles messages from another device (or session) of my own
// user: a login that logs me out, or my other device answering the call
// ringing here. Invitations I sent myself are ignored.
func (m *Machine) fromMyself(msg Message) {
	if msg.Session == m.cfg.Session {
		return
	}
	switch msg.Type {
	case MsgLogin:
		if m.cfg.MultiDevice {
			return
		}
		if m.call != nil {
			m.hangupWith(ReasonKicked)
		}
		m.loggedIn = false
		m.emit(KickedOffline{})
		m.out = append(m.out, Disconnect{})
	case MsgAccept, MsgReject:
		c := m.call
		if c == nil || c.isHub || c.accepting || c.accepted || !matches(msg, c.id, c.invite) {
			return
		}
		m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
		m.emit(CallingCancel{Sponsor: c.hub, Reason: ReasonElsewhere})
		m.finish(ReasonElsewhere)
	}
}

// matches reports whether a reply names call id and invitation invite. A
// sparse message naming only one of them matches on that one.
func matches(msg Message, id, invite string) bool {
	if msg.Call != "" && msg.Call != id {
		return false
	}
	if msg.Invite != "" && msg.Invite != invite {
		return false
	}
	return msg.Call != "" || msg.Invite != ""
}

func (m *Machine) invited(r Received) {
	msg := r.Msg
	if !slices.Contains(msg.Users, m.cfg.User) {
		return // a group invitation for others
	}
	if m.cfg.Callers != nil && !slices.Contains(m.cfg.Callers, r.From) {
		m.send(r.From, Message{Type: MsgReject, Call: msg.Call, Invite: msg.Invite, Reason: ReasonCallNotAllowed})
		m.emit(CallRefused{From: r.From, Call: msg.Call, Reason: ReasonCallNotAllowed})
		return
	}
	if c := m.call; c != nil {
		if c.id == msg.Call || (!c.isHub && c.invite == msg.Invite) {
			return // the same invitation delivered twice, or one for my own call
		}
		m.send(r.From, Message{Type: MsgReject, Call: msg.Call, Invite: msg.Invite, Reason: ReasonBusy})
		return
	}
	c := &call{
		id: msg.Call, hub: r.From, typ: msg.Media, group: msg.Group, invite: msg.Invite,
		parties: map[string]*party{r.From: {state: partyPending}},
		members: map[string]MemberState{},
	}
	for _, u := range msg.Users {
		if u != m.cfg.User {
			c.members[u] = MemberInvited
		}
	}
	m.call = c
	// Ring for the caller's timeout plus the grace, but never longer than
	// this side's own timeout: past it, this side's timer is the verdict,
	// and it tells the caller (TimerRing).
	ring := m.cfg.InviteTimeout + RingGrace
	if msg.TimeoutMS > 0 {
		ring = time.Duration(msg.TimeoutMS)*time.Millisecond + RingGrace
	}
	if ring > m.cfg.InviteTimeout+RingGrace {
		ring, c.capped = m.cfg.InviteTimeout, true
	}
	m.startTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite}, ring)
	m.media(Ring{Tone: ToneRingtone})
	m.emit(Invited{Sponsor: r.From, Users: slices.Clone(msg.Users), FromGroup: msg.Group != "", Group: msg.Group, Type: msg.Media, Call: msg.Call})
}

func (m *Machine) receivedAsHub(r Received) {
	c, msg := m.call, r.Msg
	if msg.Call != "" && msg.Call != c.id {
		return
	}
	p := c.parties[r.From]
	if p == nil {
		return // not a party of this call (or no longer)
	}
	switch msg.Type {
	case MsgAccept:
		if p.state != partyPending || !matches(msg, c.id, p.invite) {
			return
		}
		m.stopTimer(Timer{Kind: TimerInvite, Call: c.id, Invite: p.invite, User: r.From})
		m.media(ConnectPeer{Call: c.id, User: r.From, Session: msg.Session})
		// The device that answered keeps its media; the user's other
		// devices stop previewing.
		for _, s := range p.previews {
			if s != msg.Session {
				m.media(DisconnectPeer{Call: c.id, User: r.From, Session: s})
			}
		}
		p.state, p.session, p.previews = partyAccepted, msg.Session, nil
		if c.ringGroup {
			// First answer wins: the others stop ringing now, each told
			// in its own inbox (a group cancel would reach the winner too).
			c.ringGroup = false
			for _, u := range c.invitees() {
				if q := c.parties[u]; q.state == partyPending {
					m.stopTimer(Timer{Kind: TimerInvite, Call: c.id, Invite: q.invite, User: u})
					m.send(u, Message{Type: MsgCancel, Call: c.id, Invite: q.invite, Reason: ReasonElsewhere})
					m.disconnect(u, q)
					delete(c.parties, u)
				}
			}
		}
		m.relay(r.From, MemberAccepted)
	case MsgPreview:
		if p.state != partyPending || p.device(msg.Session) || len(p.previews) >= MaxPreviews || !matches(msg, c.id, p.invite) {
			return
		}
		p.previews = append(p.previews, msg.Session)
		m.media(ConnectPeer{Call: c.id, User: r.From, Session: msg.Session, Preview: true})
	case MsgReject:
		if p.state != partyPending || !matches(msg, c.id, p.invite) {
			return
		}
		status, reason := MemberRejected, ReasonDeclined
		switch msg.Reason {
		case ReasonBusy:
			status, reason = MemberBusy, ReasonBusy
			m.emit(LineBusyEvent{User: r.From})
		case ReasonTimeout: // the invitee's own, shorter, timeout ran out
			status, reason = MemberNoResp, ReasonTimeout
			m.emit(NoResp{User: r.From})
		case ReasonCallNotAllowed:
			reason = ReasonCallNotAllowed
			m.emit(Rejected{User: r.From})
		default:
			m.emit(Rejected{User: r.From})
		}
		m.removeParty(r.From, status)
		m.endIfEmpty(reason)
	case MsgLeave:
		m.peerLeft(c.id, r.From, msg.Session, msg.Reason, false)
	case MsgOffer, MsgAnswer, MsgCandidate:
		if p.device(msg.Session) && msg.Call != "" {
			m.media(Signal{Call: c.id, From: r.From, Session: msg.Session, Msg: msg})
		}
	case MsgSwitchAudio:
		m.switchAudioMessage(r)
	case MsgDoor:
		m.doorMessage(r.From, msg)
	}
}

func (m *Machine) receivedAsCallee(r Received) {
	c, msg := m.call, r.Msg
	if r.From != c.hub {
		return // only the hub speaks to me about this call
	}
	if msg.Type != MsgCancel && msg.Type != MsgTimeout && msg.Call != c.id {
		return
	}
	switch msg.Type {
	case MsgCancel, MsgTimeout:
		if !matches(msg, c.id, c.invite) || m.State() == InCall {
			return
		}
		m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
		m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
		if msg.Type == MsgCancel {
			reason := ReasonCancelled
			if msg.Reason == ReasonElsewhere {
				reason = ReasonElsewhere // someone else answered a ring group
			}
			m.emit(CallingCancel{Sponsor: c.hub, Reason: reason})
			m.finish(reason)
		} else {
			m.emit(CallingTimeout{})
			m.finish(ReasonTimeout)
		}
	case MsgLeave:
		m.hubLeft(msg.Reason)
	case MsgMember:
		m.member(msg.User, msg.Status)
	case MsgOffer, MsgAnswer, MsgCandidate:
		if c.preview || c.accepting || c.accepted {
			m.media(Signal{Call: c.id, From: r.From, Session: msg.Session, Msg: msg})
		}
	case MsgSwitchAudio:
		m.switchAudioMessage(r)
	case MsgDoor:
		m.doorMessage(r.From, msg)
	case MsgHangup:
		// The end notice is informational and never drives state.
	case MsgRejoin:
		m.rejoinReply(msg)
	}
}

// member applies the hub's relay of another invitee's state.
func (m *Machine) member(u string, status MemberState) {
	c := m.call
	if u == m.cfg.User {
		return
	}
	old, known := c.members[u]
	inCall := m.State() == InCall
	switch status {
	case MemberInvited:
		if !known {
			c.members[u] = status
			m.emit(InviteeListUpdate{Users: c.memberList(m.cfg.User)})
		}
	case MemberAccepted:
		if known {
			c.members[u] = status
		}
	case MemberJoined:
		c.members[u] = status
		if inCall && old != MemberJoined {
			m.emit(UserEnter{User: u})
		}
	case MemberLeft, MemberRejected, MemberBusy, MemberNoResp:
		if !known {
			return
		}
		delete(c.members, u)
		switch {
		case old == MemberJoined && inCall:
			m.emit(UserLeave{User: u})
		case status == MemberRejected:
			m.emit(Rejected{User: u})
		case status == MemberBusy:
			m.emit(LineBusyEvent{User: u})
		case status == MemberNoResp:
			m.emit(NoResp{User: u})
		}
	}
}

// memberList is me and the other invitees the hub told me of, sorted.
func (c *call) memberList(self string) []string {
	us := []string{self}
	for u := range c.members {
		us = append(us, u)
	}
	sort.Strings(us)
	return us
}

// --- media news ---

func (m *Machine) peerJoined(in PeerJoined) {
	c := m.call
	if c == nil || c.id != in.Call {
		return
	}
	p := c.parties[in.User]
	if p == nil || p.state == partyPresent {
		return
	}
	if !c.isHub && !c.accepted {
		return
	}
	if c.isHub && (p.state != partyAccepted || in.Session != p.session) {
		return
	}
	p.state, p.wasIn, c.rejoining = partyPresent, true, false
	if c.started.IsZero() {
		c.started = m.now
		if c.isHub {
			m.media(Ring{Tone: ToneNone})
		}
	}
	if !c.isHub {
		m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
	}
	m.emit(UserEnter{User: in.User})
	if c.isHub {
		m.relay(in.User, MemberJoined)
		return
	}
	for _, u := range sortedKeys(c.members) {
		if c.members[u] == MemberJoined {
			m.emit(UserEnter{User: u})
		}
	}
}

// peerLeft: a remote party's device (login session) left the call, by its
// leave or, fromMedia, as the media layer saw its media go for good. The
// side whose media noticed tells the other with a leave (§11.6): the other
// may not have noticed. On the hub, only the device in the call counts: a
// device that stopped previewing (the user answered on another) takes
// nothing down.
func (m *Machine) peerLeft(id, user, session string, reason Reason, fromMedia bool) {
	c := m.call
	if c == nil || c.id != id {
		return
	}
	p := c.parties[user]
	if p == nil || p.state == partyPending || (p.state == partyAway && fromMedia) || (c.isHub && session != p.session) {
		return
	}
	if reason == ReasonUnknown {
		reason = ReasonHangup
	}
	if c.isHub && fromMedia && reason == ReasonMedia && p.wasIn && m.cfg.RejoinGrace > 0 {
		// The party's device is gone, not the party: keep its place for
		// the grace period (see rejoinRequest).
		p.state, p.awayUntil = partyAway, m.now.Add(m.cfg.RejoinGrace)
		m.startTimer(Timer{Kind: TimerRejoin, Call: c.id, User: user}, m.cfg.RejoinGrace)
		return
	}
	m.partyGone(user, p, reason, fromMedia)
}

// partyGone ends party user's part in the call: its device (login session)
// left, by its leave or, tell, as this side's media saw it go for good or
// its rejoin grace ran out; tell sends it a leave, as it may not have
// noticed.
func (m *Machine) partyGone(user string, p *party, reason Reason, tell bool) {
	c := m.call
	session := p.session
	if tell {
		leave := Message{Type: MsgLeave, Call: c.id, Reason: reason}
		if c.isHub {
			leave.ToSession = session // the user's other devices are not in the call
		}
		m.send(user, leave)
	}
	if p.state == partyPresent || p.state == partyAway {
		m.emit(UserLeave{User: user})
	}
	if !c.isHub {
		// The hub's media is gone: nobody is left to talk to.
		if p.state != partyPresent {
			m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
		}
		m.finish(reason)
		return
	}
	wasPresent := p.state == partyPresent || p.state == partyAway
	m.removeParty(user, MemberLeft)
	if len(c.parties) == 0 && wasPresent && !c.started.IsZero() {
		m.send(user, Message{Type: MsgHangup, Call: c.id, Duration: int(m.now.Sub(c.started) / time.Second)})
	}
	m.endIfEmpty(reason)
}

// hubLeft ends a callee's call on its hub's leave, whatever the point
// reached: in the call, answered with the media still connecting, or (a
// hub that should have cancelled) still ringing.
func (m *Machine) hubLeft(reason Reason) {
	c := m.call
	if reason == ReasonUnknown {
		reason = ReasonHangup
	}
	switch {
	case m.State() == InCall:
		m.emit(UserLeave{User: c.hub})
	case c.accepting || c.accepted:
		m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
	default:
		m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
		reason = ReasonCancelled
		m.emit(CallingCancel{Sponsor: c.hub, Reason: reason})
	}
	m.finish(reason)
}

func (m *Machine) mediaOut(in MediaOut) {
	c := m.call
	if c == nil || c.id != in.Call {
		return
	}
	p := c.parties[in.To]
	if p == nil || (c.isHub && !p.device(in.Session)) {
		return
	}
	switch in.Msg.Type {
	case MsgOffer, MsgAnswer, MsgCandidate:
	default:
		return
	}
	msg := in.Msg
	msg.Call, msg.ToSession = c.id, in.Session
	m.send(in.To, msg)
}

// --- timers ---

func (m *Machine) timer(t Timer) {
	c := m.call
	if c == nil || c.id != t.Call {
		return // stale: the call is over
	}
	switch t.Kind {
	case TimerInvite:
		p := c.parties[t.User]
		if !c.isHub || p == nil || p.state != partyPending || p.invite != t.Invite {
			return
		}
		m.send(t.User, Message{Type: MsgTimeout, Call: c.id, Invite: p.invite})
		m.emit(NoResp{User: t.User})
		m.removeParty(t.User, MemberNoResp)
		m.endIfEmpty(ReasonTimeout)
	case TimerRing:
		if c.isHub || c.invite != t.Invite || c.accepting || c.accepted {
			return
		}
		if c.capped {
			// The caller still waits: this side's timeout is the verdict.
			m.send(c.hub, Message{Type: MsgReject, Call: c.id, Invite: c.invite, Reason: ReasonTimeout})
		}
		m.emit(CallingTimeout{})
		m.finish(ReasonTimeout)
	case TimerConnect:
		if c.isHub || c.invite != t.Invite || m.State() == InCall {
			return
		}
		if c.accepted {
			m.send(c.hub, Message{Type: MsgLeave, Call: c.id, Reason: ReasonMedia})
		}
		m.fail(errorf(ErrNoCall, "media did not connect"))
		m.finish(ReasonMedia)
	case TimerRejoin:
		if p := c.parties[t.User]; c.isHub && p != nil && p.state == partyAway && !m.now.Before(p.awayUntil) {
			m.partyGone(t.User, p, ReasonMedia, true)
		}
	case TimerSwitchAudio:
		if !c.switching {
			return
		}
		c.switching = false
		m.emit(SwitchToAudioResult{OK: false, Message: ReasonTimeout.String()})
	}
}

// --- presence ---

// pushable reports whether user's phones ring while the user is offline.
func (m *Machine) pushable(user string) bool {
	return m.cfg.Pushable != nil && m.cfg.Pushable(user)
}

func (m *Machine) presence(in Presence) {
	if in.User == m.cfg.User {
		return
	}
	if in.Online {
		delete(m.offline, in.User)
		m.reinvite(in.User)
		return
	}
	m.offline[in.User] = true
	c := m.call
	if c == nil {
		return
	}
	if c.isHub {
		if p := c.parties[in.User]; p != nil && p.state == partyPending && !m.pushable(in.User) {
			m.send(in.User, Message{Type: MsgCancel, Call: c.id, Invite: p.invite})
			m.emit(NoResp{User: in.User})
			m.removeParty(in.User, MemberNoResp)
			m.endIfEmpty(ReasonOffline)
		}
		return
	}
	if in.User == c.hub && !c.accepting && !c.accepted {
		m.stopTimer(Timer{Kind: TimerRing, Call: c.id, Invite: c.invite})
		m.emit(CallingCancel{Sponsor: c.hub, Reason: ReasonOffline})
		m.finish(ReasonOffline)
	}
}

// reinvite sends a pending invitee its invitation again, to its inbox, when
// its presence comes online: it connected or reconnected, and a clean MQTT
// session keeps nothing for a client that was away (a broker restart, a
// phone changing networks), so the first copy may never have reached it.
// The copy has the same IDs (a device that rings already ignores it) and
// the time left as its timeout.
func (m *Machine) reinvite(user string) {
	c := m.call
	if c == nil || !c.isHub {
		return
	}
	p := c.parties[user]
	if p == nil || p.state != partyPending {
		return
	}
	left := p.deadline.Sub(m.now)
	if left <= 0 {
		return // the invitation timer is about to fire
	}
	msg := p.invitation
	msg.TimeoutMS = int(min(max(left, MinTimeoutMS*time.Millisecond), MaxTimeoutMS*time.Millisecond) / time.Millisecond)
	m.send(user, msg)
}

// --- switch to audio ---

// other returns the single other party of a 1-to-1 call, or "".
func (m *Machine) other() string {
	c := m.call
	if c.isHub {
		if len(c.parties) != 1 {
			return ""
		}
		for u := range c.parties {
			return u
		}
	}
	if len(c.members) != 0 {
		return ""
	}
	return c.hub
}

func (m *Machine) switchToAudio() {
	c := m.call
	switch {
	case c == nil || m.State() != InCall:
		m.fail(errorf(ErrNoCall, "switch to audio needs a call in progress"))
	case c.typ != Video:
		m.fail(errorf(ErrInvalid, "the call is audio already"))
	case m.other() == "":
		m.fail(errorf(ErrNotAllowed, "switch to audio works in 1-to-1 calls only"))
	case c.switching:
	default:
		c.switching = true
		m.send(m.other(), Message{Type: MsgSwitchAudio, Call: c.id})
		m.startTimer(Timer{Kind: TimerSwitchAudio, Call: c.id}, SwitchToAudioTimeout)
	}
}

func (m *Machine) switchAudioMessage(r Received) {
	c, msg := m.call, r.Msg
	if msg.OK != nil { // a reply to my request
		if !c.switching {
			return
		}
		c.switching = false
		m.stopTimer(Timer{Kind: TimerSwitchAudio, Call: c.id})
		if *msg.OK {
			c.typ = Audio
			m.media(SetVideo{Call: c.id, On: false})
		}
		m.emit(SwitchToAudioResult{OK: *msg.OK, Message: reasonText(msg.Reason)})
		return
	}
	ok := m.State() == InCall && c.typ == Video && m.other() == r.From
	reply := Message{Type: MsgSwitchAudio, Call: c.id, OK: &ok}
	if !ok {
		reply.Reason = ReasonNotOneToOne
	}
	m.send(r.From, reply)
	if ok {
		c.typ = Audio
		m.media(SetVideo{Call: c.id, On: false})
		m.emit(SwitchToAudioResult{OK: true, Message: "switched by " + r.From})
	}
}

// --- the door ---

// openDoor asks the door station(s) in the call to open: the hub when I am
// a callee, every party present when I placed the call (a phone calling a
// door station). Only a door station with me in its DoorUsers obeys.
func (m *Machine) openDoor() {
	c := m.call
	if c == nil || m.State() != InCall {
		m.fail(errorf(ErrNoCall, "opening the door needs a call in progress"))
		return
	}
	if !c.isHub {
		m.send(c.hub, Message{Type: MsgDoor, Call: c.id})
		return
	}
	for _, u := range c.invitees() {
		if c.parties[u].state == partyPresent {
			m.send(u, Message{Type: MsgDoor, Call: c.id})
		}
	}
}

// doorMessage handles a door request or the reply to mine. A request is
// honoured only from a user listed in DoorUsers whose media is in the
// current call.
func (m *Machine) doorMessage(from string, msg Message) {
	c := m.call
	if msg.OK != nil {
		m.emit(DoorResult{By: from, OK: *msg.OK, Reason: msg.Reason})
		return
	}
	ok, reason := true, ReasonUnknown
	switch {
	case !slices.Contains(m.cfg.DoorUsers, from):
		ok, reason = false, ReasonDoorNotAllowed
	case c.parties[from] == nil || c.parties[from].state != partyPresent:
		ok, reason = false, ReasonNotInCall
	}
	m.send(from, Message{Type: MsgDoor, Call: c.id, OK: &ok, Reason: reason})
	m.emit(DoorResult{By: from, OK: ok, Reason: reason})
	if ok {
		m.out = append(m.out, DoorOpen{By: from})
	}
}

func sortedKeys[V any](mp map[string]V) []string {
	ks := make([]string, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// --- rejoining a call ---

// rejoin asks the hub to take this device back into a call of this user:
// a call this idle machine no longer holds (the app was reloaded) or the
// current one, whose media died. The local media is joined first, as for an
// accept; then the hub gets the request, answers, and offers media to this
// device. TimerConnect bounds the wait.
func (m *Machine) rejoin(in Rejoin) {
	c := m.call
	switch {
	case c == nil:
		switch {
		case in.Call == "":
			m.fail(errorf(ErrNoCall, "no call to rejoin"))
			return
		case !ValidID(in.Call) || !ValidID(in.Hub):
			m.fail(errorf(ErrInvalid, "rejoin needs a valid call and hub"))
			return
		case in.Hub == m.cfg.User:
			m.fail(errorf(ErrInvalid, "only a party can rejoin a call, not its hub"))
			return
		case in.Type != Audio && in.Type != Video:
			m.fail(errorf(ErrInvalid, "call type must be audio or video"))
			return
		case m.cfg.Callers != nil && !slices.Contains(m.cfg.Callers, in.Hub):
			m.fail(errorf(ErrNotAllowed, "%s may not call this user", in.Hub))
			return
		}
		c = &call{
			id: in.Call, hub: in.Hub, typ: in.Type, accepting: true, rejoining: true,
			parties: map[string]*party{in.Hub: {state: partyAccepted}},
			members: map[string]MemberState{},
		}
		m.call = c
		m.media(JoinMedia{Call: c.id, Type: c.typ, Hub: c.hub})
	case c.isHub || !c.accepted || (in.Call != "" && in.Call != c.id):
		m.fail(errorf(ErrNoCall, "no call to rejoin"))
		return
	default:
		// In the call (or rejoining it already): this device's media
		// with the hub starts over.
		if p := c.parties[c.hub]; p.state == partyPresent {
			p.state = partyAccepted
			m.emit(UserLeave{User: c.hub})
		}
		c.rejoining = true
		m.send(c.hub, Message{Type: MsgRejoin, Call: c.id})
	}
	m.startTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite}, m.cfg.InviteTimeout)
}

// rejoinJoined: the local media for a rejoin is ready (or failed).
func (m *Machine) rejoinJoined(err error) {
	c := m.call
	if err != nil {
		m.fail(err)
		m.send(c.hub, Message{Type: MsgLeave, Call: c.id, Reason: ReasonMedia})
		m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
		m.finish(ReasonMedia)
		return
	}
	c.accepted = true
	m.send(c.hub, Message{Type: MsgRejoin, Call: c.id})
}

// rejoinRequest (hub) takes a party's device back into the call: only a
// user that was in this very call (its media joined), and only while its
// place is kept: present (a device replacing one whose loss the media has
// not noticed yet) or away within its grace period. Anyone else is
// refused with a reason; the requester's call then ends.
func (m *Machine) rejoinRequest(r Received) {
	c, msg := m.call, r.Msg
	refuse := func(reason Reason) {
		no := false
		m.send(r.From, Message{Type: MsgRejoin, Call: msg.Call, ToSession: msg.Session, OK: &no, Reason: reason})
	}
	if c == nil || c.id != msg.Call {
		refuse(ReasonCallOver)
		return
	}
	p := c.parties[r.From]
	if c.isHub && p != nil && p.state == partyAway && !m.now.Before(p.awayUntil) {
		// The grace ran out; its timer has not come in yet.
		m.partyGone(r.From, p, ReasonMedia, true)
		refuse(ReasonCallOver)
		return
	}
	if !c.isHub || p == nil || !p.wasIn {
		refuse(ReasonNotInCall)
		return
	}
	if p.state == partyAway {
		m.stopTimer(Timer{Kind: TimerRejoin, Call: c.id, User: r.From})
	} else if p.session != msg.Session {
		m.media(DisconnectPeer{Call: c.id, User: r.From, Session: p.session})
	}
	if p.state == partyPresent {
		m.emit(UserLeave{User: r.From})
	}
	p.state, p.session = partyAccepted, msg.Session
	yes := true
	m.send(r.From, Message{Type: MsgRejoin, Call: c.id, ToSession: msg.Session, OK: &yes, Media: c.typ})
	m.media(ConnectPeer{Call: c.id, User: r.From, Session: msg.Session})
}

// rejoinReply (callee) reads the hub's answer to my rejoin: a refusal ends
// the call with the hub's reason.
func (m *Machine) rejoinReply(msg Message) {
	c := m.call
	if !c.rejoining || !c.accepted {
		return
	}
	if *msg.OK {
		if msg.Media == Audio || msg.Media == Video {
			c.typ = msg.Media
		}
		return
	}
	reason := msg.Reason
	if reason == ReasonUnknown {
		reason = ReasonCallOver
	}
	m.stopTimer(Timer{Kind: TimerConnect, Call: c.id, Invite: c.invite})
	m.finish(reason)
}
