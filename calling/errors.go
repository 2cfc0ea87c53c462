package calling

import (
	"errors"
	"fmt"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrBadMessage: a wire message that is malformed, too large, of an
	// unknown type or of an unsupported version.
	ErrBadMessage = errors.New("bad message")
	// ErrNotLoggedIn: a command other than Login before Login or after Logout.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrBusy: a command that needs an idle machine (placing a call while
	// ringing, say).
	ErrBusy = errors.New("busy")
	// ErrNoCall: a command that needs a call (accept with no invitation).
	ErrNoCall = errors.New("no call")
	// ErrInvalid: a command with invalid arguments (bad user ID, too many
	// parties, calling oneself).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotAllowed: an operation the current role may not perform (a callee
	// adding participants, a door command from a user not allowed to).
	ErrNotAllowed = errors.New("not allowed")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
