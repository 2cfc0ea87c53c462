package calling

import (
	"regexp"
)

// CallType is the media a call carries.
type CallType int

const (
	CallTypeUnknown CallType = iota
	Audio
	Video
)

var callTypeNames = wireNames{Audio: "audio", Video: "video"}

// String returns "audio", "video" or "unknown".
func (t CallType) String() string { return callTypeNames.name(int(t)) }

// MarshalText encodes the call type as "audio" or "video".
func (t CallType) MarshalText() ([]byte, error) { return callTypeNames.marshal("call type", int(t)) }

// UnmarshalText decodes "audio" or "video". Unlike the other wire enums an
// unknown name is an error: an invitation must say what media it carries.
func (t *CallType) UnmarshalText(b []byte) error {
	*t = CallType(callTypeNames.parse(string(b)))
	if *t == CallTypeUnknown {
		return errorf(ErrBadMessage, "unknown call type %q", b)
	}
	return nil
}

// State is the effective calling state of a Machine.
type State int

const (
	StateUnknown State = iota
	Idle
	Dialing // I placed a call and no remote party has joined yet.
	Ringing // I am invited and have not answered (or answered and media is not up yet).
	InCall  // At least one remote party's media joined.
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Dialing:
		return "dialing"
	case Ringing:
		return "ringing"
	case InCall:
		return "in_call"
	default:
		return "unknown"
	}
}

// MaxParties is the largest call, the caller included, as in the original UI.
const MaxParties = 9

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidID reports whether s is a valid user or group ID: 1 to 64 letters,
// digits, '-' or '_'.
func ValidID(s string) bool { return idPattern.MatchString(s) }
