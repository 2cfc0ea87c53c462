package calling

import "time"

// Event is what observers are told (section 3 of the calling spec).
type Event interface{ isEvent() }

type (
	// Error: a command or signaling operation failed, or media failed fatally.
	Error struct{ Err error }
	// Invited: a new invitation that includes me while I am idle.
	Invited struct {
		Sponsor   string
		Users     []string // every invitee, me included
		FromGroup bool
		Group     string
		Type      CallType
		Call      string
	}
	// InviteeListUpdate: more users were invited to the current call.
	InviteeListUpdate struct{ Users []string }
	// UserEnter / UserLeave: a remote party's media joined / left.
	UserEnter struct{ User string }
	UserLeave struct{ User string }
	// Rejected: an invitee declined (caller side).
	Rejected struct{ User string }
	// LineBusy: an invitee was in another call (caller side).
	LineBusyEvent struct{ User string }
	// NoResp: an invitee did not answer in time, or is offline (caller side).
	NoResp struct{ User string }
	// CallingCancel: the caller cancelled before I answered (callee side);
	// Reason is ReasonElsewhere when my other device answered or declined.
	CallingCancel struct {
		Sponsor string
		Reason  Reason
	}
	// CallingTimeout: I did not answer in time (callee side).
	CallingTimeout struct{}
	// CallEnd: the call is over. Reason says why; Duration counts from the
	// first remote party joining (zero if nobody did).
	CallEnd struct {
		Reason   Reason
		Duration time.Duration
	}
	// UserVideoAvailable / UserAudioAvailable: a party's video or audio
	// started or stopped.
	UserVideoAvailable struct {
		User      string
		Available bool
	}
	UserAudioAvailable struct {
		User      string
		Available bool
	}
	// UserVoiceVolume: a party's voice level, 0 to 100, every 300 ms.
	UserVoiceVolume struct {
		User   string
		Volume int
	}
	// SwitchToAudioResult: result of a switch-to-audio request, or notice
	// that the peer switched the call to audio.
	SwitchToAudioResult struct {
		OK      bool
		Message string
	}
	// KickedOffline: the same user logged in elsewhere.
	KickedOffline struct{}
	// StateChanged: the effective state moved.
	StateChanged struct{ From, To State }
	// CallRefused: an invitation from From was refused at once, without
	// ringing (ReasonCallNotAllowed: From is not among Config.Callers).
	CallRefused struct {
		From   string
		Call   string
		Reason Reason
	}
	// DoorResult: the answer to my OpenDoor, or on the hub a refused request.
	DoorResult struct {
		By     string
		OK     bool
		Reason Reason // ReasonUnknown when OK
	}
)

func (Error) isEvent()               {}
func (Invited) isEvent()             {}
func (InviteeListUpdate) isEvent()   {}
func (UserEnter) isEvent()           {}
func (UserLeave) isEvent()           {}
func (Rejected) isEvent()            {}
func (LineBusyEvent) isEvent()       {}
func (NoResp) isEvent()              {}
func (CallingCancel) isEvent()       {}
func (CallingTimeout) isEvent()      {}
func (CallEnd) isEvent()             {}
func (UserVideoAvailable) isEvent()  {}
func (UserAudioAvailable) isEvent()  {}
func (UserVoiceVolume) isEvent()     {}
func (SwitchToAudioResult) isEvent() {}
func (KickedOffline) isEvent()       {}
func (StateChanged) isEvent()        {}
func (DoorResult) isEvent()          {}
func (CallRefused) isEvent()         {}
