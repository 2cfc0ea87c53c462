package calling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is the version of the wire format this package speaks. A
// message with a higher "v" is dropped (it may carry semantics this version
// cannot honour); lower versions do not exist yet. Unknown fields are ignored,
// so fields may be added without a version change.
const ProtocolVersion = 1

// Limits on untrusted input. See docs/protocol.md.
const (
	MaxMessageSize = 64 << 10 // bytes of one encoded message
	MaxIDLength    = 64       // call, invite and session IDs
	MaxSDPLength   = 32 << 10
	MaxTextLength  = 256 // reason, message and candidate strings
	MaxTimeoutMS   = 300_000
	MinTimeoutMS   = 5_000
)

// Candidate is a trickle ICE candidate, as in the browser's RTCIceCandidateInit.
type Candidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// Message is one signaling message. The sender is not a field: it is the
// authenticated user the transport learned from the broker (the topic a client
// may publish on), so a client cannot forge it.
type Message struct {
	V       int     `json:"v"`
	Type    MsgType `json:"type"`
	Call    string  `json:"call,omitempty"`    // call ID, the room
	Invite  string  `json:"invite,omitempty"`  // invite ID
	Session string  `json:"session,omitempty"` // sender's login session
	// ToSession names the addressee's device when a message to a user's
	// inbox is for one of its devices only (media messages); the user's
	// other devices drop it.
	ToSession string `json:"to_session,omitempty"`

	Users     []string `json:"users,omitempty"`      // invite: every invitee of this invitation
	Group     string   `json:"group,omitempty"`      // invite: group the invitation went to
	Media     CallType `json:"media,omitempty"`      // invite, rejoin reply: audio or video
	TimeoutMS int      `json:"timeout_ms,omitempty"` // invite: how long the caller waits

	Reason   Reason      `json:"reason,omitempty"`   // reject, cancel, leave, door reply, switch_audio reply
	Duration int         `json:"duration,omitempty"` // hangup: call duration in seconds
	User     string      `json:"user,omitempty"`     // member: whom it is about
	Status   MemberState `json:"status,omitempty"`   // member: that user's state
	OK       *bool       `json:"ok,omitempty"`       // switch_audio, door and rejoin replies

	SDP       string     `json:"sdp,omitempty"`       // offer, answer
	Restart   bool       `json:"restart,omitempty"`   // offer: ICE restart
	Candidate *Candidate `json:"candidate,omitempty"` // candidate
}

// Encode returns the JSON form of m, with V set to ProtocolVersion.
func Encode(m Message) ([]byte, error) {
	m.V = ProtocolVersion
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type, err)
	}
	if len(b) > MaxMessageSize {
		return nil, errorf(ErrBadMessage, "%s message is %d bytes, over the %d-byte limit", m.Type, len(b), MaxMessageSize)
	}
	return b, nil
}

// Decode parses and validates one wire message. Every error wraps ErrBadMessage.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessageSize {
		return m, errorf(ErrBadMessage, "%d bytes, over the %d-byte limit", len(b), MaxMessageSize)
	}
	// Look at the version first, so that a newer peer's message is refused
	// as such rather than for whatever field changed shape.
	var head struct {
		V    *int   `json:"v"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return m, errorf(ErrBadMessage, "not a JSON object: %v", err)
	}
	if !utf8.Valid(b) {
		// encoding/json would turn the bad bytes into U+FFFD and act on
		// what is left; the protocol says the message is dropped whole.
		return m, errorf(ErrBadMessage, "not valid UTF-8")
	}
	if head.V == nil {
		return m, errorf(ErrBadMessage, "no version field \"v\"")
	}
	if *head.V != ProtocolVersion {
		return m, errorf(ErrBadMessage, "unsupported version %d (this side speaks %d)", *head.V, ProtocolVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return m, errorf(ErrBadMessage, "%v", err)
	}
	if dec.More() {
		return m, errorf(ErrBadMessage, "trailing data after the message")
	}
	if m.Type == MsgUnknown {
		return m, errorf(ErrBadMessage, "unknown message type %q", head.Type)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// Validate checks the fields a message of its type needs and the limits of
// every field. Sparse messages are accepted where the calling spec asks for
// it: a cancel needs only a call ID or an invite ID.
func (m *Message) Validate() error {
	bad := func(format string, args ...any) error {
		return errorf(ErrBadMessage, "%s: %s", m.Type, fmt.Sprintf(format, args...))
	}
	for name, s := range map[string]string{"call": m.Call, "invite": m.Invite, "session": m.Session, "to_session": m.ToSession} {
		if len(s) > MaxIDLength || !utf8.ValidString(s) {
			return bad("field %s is not a valid ID", name)
		}
		if s != "" && !ValidID(s) {
			return bad("field %s %q is not a valid ID", name, s)
		}
	}
	if m.Group != "" && !ValidID(m.Group) {
		return bad("group %q is not a valid ID", m.Group)
	}
	if m.User != "" && !ValidID(m.User) {
		return bad("user %q is not a valid ID", m.User)
	}
	if len(m.SDP) > MaxSDPLength {
		return bad("sdp is %d bytes, over %d", len(m.SDP), MaxSDPLength)
	}
	if m.Duration < 0 {
		return bad("negative duration")
	}
	needCall := func() error {
		if m.Call == "" {
			return bad("no call ID")
		}
		return nil
	}
	switch m.Type {
	case MsgInvite:
		if m.Call == "" || m.Invite == "" {
			return bad("needs call and invite IDs")
		}
		if len(m.Users) == 0 || len(m.Users) > MaxParties-1 {
			return bad("needs 1 to %d users, has %d", MaxParties-1, len(m.Users))
		}
		seen := make(map[string]bool, len(m.Users))
		for _, u := range m.Users {
			if !ValidID(u) {
				return bad("user %q is not a valid ID", u)
			}
			if seen[u] {
				return bad("user %q listed twice", u)
			}
			seen[u] = true
		}
		if m.Media != Audio && m.Media != Video {
			return bad("media must be audio or video")
		}
		if m.TimeoutMS != 0 && (m.TimeoutMS < MinTimeoutMS || m.TimeoutMS > MaxTimeoutMS) {
			return bad("timeout_ms %d outside %d..%d", m.TimeoutMS, MinTimeoutMS, MaxTimeoutMS)
		}
	case MsgCancel:
		if m.Call == "" && m.Invite == "" {
			return bad("needs a call or an invite ID")
		}
	case MsgAccept, MsgReject, MsgTimeout, MsgPreview:
		if m.Call == "" && m.Invite == "" {
			return bad("needs a call or an invite ID")
		}
	case MsgLeave, MsgHangup, MsgSwitchAudio, MsgDoor:
		return needCall()
	case MsgRejoin:
		if err := needCall(); err != nil {
			return err
		}
		if m.OK == nil && m.Session == "" {
			return bad("a request needs the session to take back")
		}
	case MsgMember:
		if err := needCall(); err != nil {
			return err
		}
		if m.User == "" || m.Status == MemberUnknown {
			return bad("needs user and status")
		}
	case MsgOffer, MsgAnswer:
		if err := needCall(); err != nil {
			return err
		}
		if m.SDP == "" {
			return bad("no sdp")
		}
	case MsgCandidate:
		if err := needCall(); err != nil {
			return err
		}
		if m.Candidate == nil || len(m.Candidate.Candidate) > MaxTextLength {
			return bad("needs a candidate of at most %d bytes", MaxTextLength)
		}
		if m.Candidate.SDPMid != nil && len(*m.Candidate.SDPMid) > MaxIDLength {
			return bad("sdpMid too long")
		}
	case MsgLogin:
		if m.Session == "" {
			return bad("needs a session")
		}
	default:
		return errorf(ErrBadMessage, "unknown message type %q", m.Type)
	}
	return nil
}
