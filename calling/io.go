package calling

import "time"

// Input is everything that can happen to a Machine: a command from the local
// user, a message from signaling, a timer, or news from the media layer.
type Input interface{ isInput() }

// Commands (the API of section 2 of the calling spec).
type (
	// Login marks the machine logged in and announces this session to the
	// user's other devices (which, unless multi-device is on, log out).
	Login struct{}
	// Logout hangs up any call and logs out.
	Logout struct{}
	// Call invites Users; with Group the invitation is broadcast once to the
	// group topic, otherwise every user gets an invitation of its own. During
	// a call placed by this machine it adds participants.
	//
	// With RingGroup the first invitee to accept takes the call: every
	// other pending invitation is cancelled at once (a doorbell ringing
	// every phone of a household).
	Call struct {
		Users     []string
		Type      CallType
		Group     string
		RingGroup bool
	}
	// Accept answers the current invitation.
	Accept struct{}
	// Preview asks the caller for its media while the invitation rings
	// (early media: see the door before answering). Nothing is sent from
	// this side until Accept.
	Preview struct{}
	// Reject declines the current invitation.
	Reject struct{}
	// LineBusy declines the current invitation as busy.
	LineBusy struct{}
	// Hangup cancels, declines or leaves, whatever the state.
	Hangup struct{}
	// SwitchToAudio asks the other party of a 1-to-1 video call to drop video.
	SwitchToAudio struct{}
	// OpenDoor asks the call's hub (a door station) to open its door.
	OpenDoor struct{}
	// Configure changes the settings that may change while running (on a
	// configuration reload); they apply from the next invitation or
	// request on. Zero values keep the current setting; DoorUsers and
	// Callers replace their list when not nil (an empty Callers lets
	// nobody call).
	Configure struct {
		InviteTimeout time.Duration
		DoorUsers     []string
		Callers       []string
	}
	// Rejoin asks the hub of a call this user is in to take this device
	// (login session) back into it: after the app was reloaded (a new
	// session, an idle machine: Call, Hub and Type say which call) or when
	// its media died while the call went on (Call empty or the current
	// call's ID). The hub keeps a party whose media dropped for
	// Config.RejoinGrace on its side; past that, or for a call the user
	// was not in, it refuses and the call ends here with its reason.
	Rejoin struct {
		Call, Hub string
		Type      CallType
	}
	// Control is a local media control (camera, microphone, speaker, remote
	// view); it is passed to the media layer as it is.
	Control struct{ Control MediaControl }
)

// Signaling inputs.
type (
	// Received is a decoded message. From is the authenticated sender (from
	// the broker), never a field of the message; Group is set when it came
	// through a group topic.
	Received struct {
		From  string
		Group string
		Msg   Message
	}
	// Presence reports a user's presence (retained, last will on loss).
	Presence struct {
		User   string
		Online bool
	}
	// LinkChanged reports the signaling link going up or down.
	LinkChanged struct{ Up bool }
)

// TimerFired is a timer started by a StartTimer effect coming due.
type TimerFired struct{ Timer Timer }

// Media inputs. Each names the call it is about; inputs about another call
// than the current one are dropped.
type (
	// MediaJoined reports the result of a JoinMedia effect.
	MediaJoined struct {
		Call string
		Err  error
	}
	// PeerJoined: a remote party's media is connected. Session is the
	// party's device, as in the ConnectPeer or Signal that made the
	// connection.
	PeerJoined struct{ Call, User, Session string }
	// PeerLeft: a remote party's media with device Session is gone (closed
	// or failed for good).
	PeerLeft struct {
		Call, User, Session string
		Reason              Reason // ReasonUnknown counts as ReasonHangup
	}
	// MediaFailed: a fatal media error; the call ends.
	MediaFailed struct {
		Call string
		Err  error
	}
	// MediaOut is a message the media layer wants sent to a party of the
	// call (offer, answer, candidate), for the party's device Session; the
	// core stamps the call ID and that device (to_session) on it.
	MediaOut struct {
		Call    string
		To      string
		Session string
		Msg     Message
	}
	// MediaStatus carries availability and voice level of a party; the core
	// turns it into UserVideoAvailable, UserAudioAvailable or
	// UserVoiceVolume events for the current call.
	MediaStatus struct {
		Call  string
		Event Event
	}
)

func (Login) isInput()         {}
func (Logout) isInput()        {}
func (Call) isInput()          {}
func (Accept) isInput()        {}
func (Preview) isInput()       {}
func (Reject) isInput()        {}
func (LineBusy) isInput()      {}
func (Hangup) isInput()        {}
func (SwitchToAudio) isInput() {}
func (OpenDoor) isInput()      {}
func (Control) isInput()       {}
func (Rejoin) isInput()        {}
func (Configure) isInput()     {}
func (Received) isInput()      {}
func (Presence) isInput()      {}
func (LinkChanged) isInput()   {}
func (TimerFired) isInput()    {}
func (MediaJoined) isInput()   {}
func (PeerJoined) isInput()    {}
func (PeerLeft) isInput()      {}
func (MediaFailed) isInput()   {}
func (MediaOut) isInput()      {}
func (MediaStatus) isInput()   {}

// TimerKind says what a timer guards.
type TimerKind int

const (
	TimerUnknown     TimerKind = iota
	TimerInvite                // caller: one invitee's invitation
	TimerRing                  // callee: local safety timer while ringing
	TimerConnect               // callee: accepted (or rejoining), waiting for the hub's media
	TimerSwitchAudio           // waiting for the reply to a switch-to-audio request
	TimerRejoin                // hub: a party whose media dropped may rejoin until it fires
)

var timerNames = wireNames{TimerInvite: "invite", TimerRing: "ring", TimerConnect: "connect", TimerSwitchAudio: "switch_audio", TimerRejoin: "rejoin"}

// ParseTimerKind returns the timer kind named s, TimerUnknown if none is.
func ParseTimerKind(s string) TimerKind { return TimerKind(timerNames.parse(s)) }

// String returns the kind's name, "unknown" for TimerUnknown.
func (k TimerKind) String() string { return timerNames.name(int(k)) }

// Timer identifies a timer. It carries the identity of what it guards, so a
// timer that fires after its call or invitation is over is recognised as
// stale and dropped.
type Timer struct {
	Kind   TimerKind
	Call   string
	Invite string
	User   string
}

// Effect is something the owner of a Machine must do, in order.
type Effect interface{ isEffect() }

type (
	// Send publishes Msg to one user's inbox (To) or once to a group topic
	// (Group).
	Send struct {
		To    string
		Group string
		Msg   Message
	}
	// Emit reports an event to the observers.
	Emit struct{ Event Event }
	// StartTimer starts (or restarts) Timer to fire after After.
	StartTimer struct {
		Timer Timer
		After time.Duration
	}
	// StopTimer stops Timer if it is running.
	StopTimer struct{ Timer Timer }
	// Disconnect asks the owner to leave signaling for good (kicked offline).
	Disconnect struct{}
	// Media asks the media layer for something.
	Media struct{ Do MediaEffect }
	// DoorOpen tells the owner to open the door: By is an authorised party of
	// the current call.
	DoorOpen struct{ By string }
)

func (Send) isEffect()       {}
func (Emit) isEffect()       {}
func (StartTimer) isEffect() {}
func (StopTimer) isEffect()  {}
func (Disconnect) isEffect() {}
func (Media) isEffect()      {}
func (DoorOpen) isEffect()   {}

// MediaEffect is a request to the media layer.
type MediaEffect interface{ isMediaEffect() }

// Tone is what the speaker plays while a call is being set up.
type Tone int

const (
	ToneNone     Tone = iota
	ToneRingtone      // I am being called
	ToneRingback      // I am calling
)

// String returns "none", "ringtone" or "ringback".
func (t Tone) String() string {
	if t > ToneNone && t <= ToneRingback {
		return [...]string{ToneRingtone: "ringtone", ToneRingback: "ringback"}[t]
	}
	return "none"
}

type (
	// JoinMedia: get local media ready for call Call. Hub is the party every
	// other party connects to (this user when it placed the call). Answer
	// with a MediaJoined input.
	JoinMedia struct {
		Call  string
		Type  CallType
		Hub   string
		IsHub bool
	}
	// ConnectPeer (hub only): set up media with User's device Session,
	// which accepted; or, with Preview, which asked to see and hear the hub
	// before answering (send only, and no PeerJoined expected until a later
	// ConnectPeer without Preview for the same device, which may reuse the
	// connection). Media is per device: several devices of one user may
	// preview at once, each on a connection of its own.
	ConnectPeer struct {
		Call, User, Session string
		Preview             bool
	}
	// DisconnectPeer (hub only): tear down media with User's device
	// Session, leaving the user's other devices alone.
	DisconnectPeer struct{ Call, User, Session string }
	// LeaveMedia: the call is over; release everything.
	LeaveMedia struct{ Call string }
	// Signal hands a media message (offer, answer, candidate) from a party
	// of the current call, sent by its device Session, to the media layer.
	Signal struct {
		Call    string
		From    string
		Session string
		Msg     Message
	}
	// Ring plays a tone (or stops it with ToneNone).
	Ring struct{ Tone Tone }
	// SetVideo turns the call's video on or off (switch to audio).
	SetVideo struct {
		Call string
		On   bool
	}
	// MediaControl is a local control passed through from a Control command.
	MediaControl struct {
		Kind  ControlKind
		On    bool   // camera on, mic muted, hands-free on, remote view on
		Front bool   // camera: front (true) or back
		User  string // remote view: whose video
	}
)

// ControlKind names a local media control.
type ControlKind int

const (
	ControlUnknown      ControlKind = iota
	ControlCamera                   // openCamera / closeCamera (On)
	ControlSwitchCamera             // switchCamera (Front)
	ControlMicMute                  // setMicMute (On = muted)
	ControlHandsFree                // setHandsFree (On)
	ControlRemoteView               // startRemoteView / stopRemoteView (User, On)
)

var controlNames = wireNames{
	ControlCamera: "camera", ControlSwitchCamera: "switch_camera", ControlMicMute: "mic_mute",
	ControlHandsFree: "hands_free", ControlRemoteView: "remote_view",
}

// ParseControlKind returns the control named s, ControlUnknown if none is.
func ParseControlKind(s string) ControlKind { return ControlKind(controlNames.parse(s)) }

// String returns the control's name, "unknown" for ControlUnknown.
func (k ControlKind) String() string { return controlNames.name(int(k)) }

func (JoinMedia) isMediaEffect()      {}
func (ConnectPeer) isMediaEffect()    {}
func (DisconnectPeer) isMediaEffect() {}
func (LeaveMedia) isMediaEffect()     {}
func (Signal) isMediaEffect()         {}
func (Ring) isMediaEffect()           {}
func (SetVideo) isMediaEffect()       {}
func (MediaControl) isMediaEffect()   {}
