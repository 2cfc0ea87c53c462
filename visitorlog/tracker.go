package visitorlog

import (
	"time"

	"github.com/intercomd/intercomd/calling"
)

// Outcome is how a ring ended.
type Outcome string

// The outcomes of a ring.
const (
	// Ringing: the ring is under way.
	Ringing Outcome = "ringing"
	// Answered: a resident's media joined the call.
	Answered Outcome = "answered"
	// Declined: nobody answered and at least one resident declined.
	Declined Outcome = "declined"
	// Missed: nobody answered or declined (timeout, cancelled, offline).
	Missed Outcome = "missed"
	// Interrupted: the daemon stopped during the ring; nobody knows.
	Interrupted Outcome = "interrupted"
)

// ChangeKind says what a calling event meant for the ring.
type ChangeKind int

// The kinds of Change.
const (
	// NoChange: the event says nothing new about a ring.
	NoChange ChangeKind = iota
	// Rang: the doorbell started a call (the device dials from idle).
	Rang
	// Answer: User answered the ring (the first party to join).
	Answer
	// Decline: User declined the ring.
	Decline
	// End: the ring's call ended with Outcome after Duration.
	End
)

// Change is what one calling event meant for the ring under way.
type Change struct {
	Kind     ChangeKind
	User     string
	Outcome  Outcome
	Duration time.Duration
}

// Tracker follows a door station's calling events (its own machine's, in
// order) and tells the rings and their outcomes: a ring is a call the
// device places from idle (the doorbell); it is answered when the first
// party's media joins, declined when it ends unanswered after a party
// declined, missed when it ends unanswered otherwise. The Home Assistant
// bridge and the visitor log both read rings through it. A Tracker is
// pure (no I/O, no clock) and not safe for concurrent use.
type Tracker struct {
	ringing, answered, declined bool
}

// Step reads one event.
func (t *Tracker) Step(ev calling.Event) Change {
	switch e := ev.(type) {
	case calling.StateChanged:
		if e.To == calling.Dialing && e.From == calling.Idle {
			t.ringing, t.answered, t.declined = true, false, false
			return Change{Kind: Rang}
		}
	case calling.UserEnter:
		if t.ringing && !t.answered {
			t.answered = true
			return Change{Kind: Answer, User: e.User}
		}
	case calling.Rejected:
		if t.ringing {
			t.declined = true
			return Change{Kind: Decline, User: e.User}
		}
	case calling.CallEnd:
		if !t.ringing {
			return Change{}
		}
		t.ringing = false
		out := Missed
		switch {
		case t.answered:
			out = Answered
		case t.declined:
			out = Declined
		}
		return Change{Kind: End, Outcome: out, Duration: e.Duration}
	}
	return Change{}
}
