package push

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// Payload kinds.
const (
	KindRing = "ring" // a call rings the user
	KindEnd  = "end"  // it no longer does
)

// End reasons of a Payload of kind "end".
const (
	EndMissed    = "missed"    // cancelled by the caller or timed out: "Missed call from ..."
	EndAnswered  = "answered"  // answered by this user (on one of their devices)
	EndDeclined  = "declined"  // declined by this user
	EndElsewhere = "elsewhere" // answered by someone else (a ring group)
)

// Payload is what a push carries (version 1), for the web app's service
// worker and documented in docs/protocol.md. Times are Unix milliseconds.
type Payload struct {
	V      int    `json:"v"`
	Kind   string `json:"type"`
	Call   string `json:"call"`
	Invite string `json:"invite,omitempty"`
	From   string `json:"from"`
	Name   string `json:"name"`
	Media  string `json:"media,omitempty"`
	At     int64  `json:"ts"`
	// Expires: when the ring stops at the latest.
	Expires int64 `json:"expires,omitempty"`
	// Snapshot is the path (on the device's origin, authorised by the
	// user's token) of the caller's camera picture at ring time.
	Snapshot string `json:"snapshot,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Title and Body are the notification's text, for clients that show
	// the payload as it is.
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
}

func (p Payload) encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

// topicOf is the RFC 8030 Topic of a call's pushes (at most 32 base64url
// characters): the end of a call replaces its ring when the phone has not
// fetched it yet.
func topicOf(call string) string {
	h := sha256.Sum256([]byte(call))
	return base64.RawURLEncoding.EncodeToString(h[:24])
}
