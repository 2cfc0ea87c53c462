package calling

import (
	"unicode/utf8"
)

// The wire enums (message types, reasons, member states) are ints whose zero
// value is Unknown. On the wire they are strings: MarshalText writes the
// name, UnmarshalText maps a name this version does not know to the Unknown
// zero value rather than failing, so a newer peer's value is seen as
// unknown, not as a malformed message. An Unknown value is never written:
// every field that holds one is omitempty, and MarshalText refuses it.

// wireNames lists the wire names of an enum, indexed by value; index 0, the
// Unknown zero value, has none.
type wireNames []string

func (n wireNames) name(v int) string {
	if v > 0 && v < len(n) {
		return n[v]
	}
	return "unknown"
}

func (n wireNames) parse(s string) int {
	for i := 1; i < len(n); i++ {
		if n[i] == s {
			return i
		}
	}
	return 0
}

func (n wireNames) marshal(kind string, v int) ([]byte, error) {
	if v <= 0 || v >= len(n) {
		return nil, errorf(ErrBadMessage, "%s %d has no wire name", kind, v)
	}
	return []byte(n[v]), nil
}

func (n wireNames) unmarshal(kind string, b []byte) (int, error) {
	if len(b) > MaxTextLength || !utf8.Valid(b) {
		return 0, errorf(ErrBadMessage, "%s is over %d bytes or not UTF-8", kind, MaxTextLength)
	}
	return n.parse(string(b)), nil
}

// MsgType names a wire message.
type MsgType int

const (
	MsgUnknown     MsgType = iota
	MsgInvite              // caller -> invitees: ring
	MsgCancel              // caller -> invitee: stop ringing
	MsgAccept              // invitee -> caller (and to the invitee's other devices)
	MsgReject              // invitee -> caller; reason "declined" or "busy"
	MsgTimeout             // caller -> invitee: the invitation expired
	MsgLeave               // a party left the call
	MsgHangup              // end notice with the duration; informational only
	MsgMember              // hub -> participants: a party's state changed
	MsgOffer               // SDP offer (hub -> party, or ICE restart)
	MsgAnswer              // SDP answer
	MsgCandidate           // trickle ICE candidate
	MsgSwitchAudio         // request to drop video, or its reply (with ok)
	MsgDoor                // participant -> hub: open the door; hub -> participant: result (with ok)
	MsgLogin               // to one's own inbox: a new login of this user
	MsgPreview             // ringing invitee -> caller: send me your media before I answer
	MsgRejoin              // party -> hub: take my new device back into the call; hub -> party: reply (with ok)
)

var msgTypeNames = wireNames{
	MsgInvite: "invite", MsgCancel: "cancel", MsgAccept: "accept", MsgReject: "reject",
	MsgTimeout: "timeout", MsgLeave: "leave", MsgHangup: "hangup", MsgMember: "member",
	MsgOffer: "offer", MsgAnswer: "answer", MsgCandidate: "candidate",
	MsgSwitchAudio: "switch_audio", MsgDoor: "door", MsgLogin: "login", MsgPreview: "preview",
	MsgRejoin: "rejoin",
}

// ParseMsgType returns the message type named s, MsgUnknown if none is.
func ParseMsgType(s string) MsgType { return MsgType(msgTypeNames.parse(s)) }

// String returns the wire name, "unknown" for MsgUnknown.
func (t MsgType) String() string { return msgTypeNames.name(int(t)) }

// MarshalText writes the wire name; MsgUnknown has none.
func (t MsgType) MarshalText() ([]byte, error) { return msgTypeNames.marshal("message type", int(t)) }

// UnmarshalText reads a wire name; one this version does not know is MsgUnknown.
func (t *MsgType) UnmarshalText(b []byte) error {
	v, err := msgTypeNames.unmarshal("message type", b)
	*t = MsgType(v)
	return err
}

// Reason says why a call or invitation ended or a request was refused. It is
// carried in reject, cancel, leave and door and switch_audio replies, and in
// CallEnd, CallingCancel, PeerLeft and DoorResult.
type Reason int

const (
	ReasonUnknown   Reason = iota
	ReasonDeclined         // the invitee declined
	ReasonBusy             // the invitee is in another call
	ReasonTimeout          // nobody answered in time
	ReasonCancelled        // the caller cancelled
	ReasonHangup           // a party hung up
	ReasonMedia            // media failed or could not connect
	ReasonKicked           // logged in elsewhere
	ReasonLogout           // logged out during the call
	ReasonElsewhere        // answered or declined on another device of the same user
	ReasonOffline          // the other party went offline
	// Refusals of a door request and of a switch to audio.
	ReasonDoorNotAllowed // the user is not in the door station's door users
	ReasonNotInCall      // the user's media is not in the call
	ReasonNotOneToOne    // switch to audio outside a 1-to-1 video call
	// Refusal of an invitation from a user who may not call this one.
	ReasonCallNotAllowed
	// Refusal of a rejoin: the hub has no such call (it ended, or the
	// party's grace period ran out and nobody else was left).
	ReasonCallOver
)

var reasonNames = wireNames{
	ReasonDeclined: "declined", ReasonBusy: "busy", ReasonTimeout: "timeout",
	ReasonCancelled: "cancelled", ReasonHangup: "hangup", ReasonMedia: "media",
	ReasonKicked: "kicked", ReasonLogout: "logout", ReasonElsewhere: "elsewhere",
	ReasonOffline:        "offline",
	ReasonDoorNotAllowed: "not allowed to open the door",
	ReasonNotInCall:      "not in the call",
	ReasonNotOneToOne:    "not a 1-to-1 video call",
	ReasonCallNotAllowed: "not allowed to call",
	ReasonCallOver:       "call over",
}

// ParseReason returns the reason named s, ReasonUnknown if none is.
func ParseReason(s string) Reason { return Reason(reasonNames.parse(s)) }

// String returns the wire name, "unknown" for ReasonUnknown.
func (r Reason) String() string { return reasonNames.name(int(r)) }

// MarshalText writes the wire name; ReasonUnknown has none.
func (r Reason) MarshalText() ([]byte, error) { return reasonNames.marshal("reason", int(r)) }

// UnmarshalText reads a wire name; one this version does not know is ReasonUnknown.
func (r *Reason) UnmarshalText(b []byte) error {
	v, err := reasonNames.unmarshal("reason", b)
	*r = Reason(v)
	return err
}

// MemberState is a party's state in a hub's call, as relayed by MsgMember.
type MemberState int

const (
	MemberUnknown  MemberState = iota
	MemberInvited              // invited, not answered yet
	MemberAccepted             // accepted, media not connected yet
	MemberJoined               // media connected
	MemberLeft                 // left the call
	MemberRejected             // declined
	MemberBusy                 // in another call
	MemberNoResp               // did not answer in time, or offline
)

var memberNames = wireNames{
	MemberInvited: "invited", MemberAccepted: "accepted", MemberJoined: "joined",
	MemberLeft: "left", MemberRejected: "rejected", MemberBusy: "busy", MemberNoResp: "noresp",
}

// ParseMemberState returns the member state named s, MemberUnknown if none is.
func ParseMemberState(s string) MemberState { return MemberState(memberNames.parse(s)) }

// String returns the wire name, "unknown" for MemberUnknown.
func (s MemberState) String() string { return memberNames.name(int(s)) }

// MarshalText writes the wire name; MemberUnknown has none.
func (s MemberState) MarshalText() ([]byte, error) {
	return memberNames.marshal("member state", int(s))
}

// UnmarshalText reads a wire name; one this version does not know is MemberUnknown.
func (s *MemberState) UnmarshalText(b []byte) error {
	v, err := memberNames.unmarshal("member state", b)
	*s = MemberState(v)
	return err
}
