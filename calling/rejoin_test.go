package calling

import (
	"slices"
	"testing"
	"time"
)

const grace = 20 * time.Second

// vanish takes n out of the world as a reloaded page goes: no goodbye, its
// timers and media gone. With noticed, the hub's media sees the connection
// go (PeerLeft with ReasonMedia); otherwise it has not noticed yet.
func (w *world) vanish(n *node, noticed bool) {
	w.nodes = slices.DeleteFunc(w.nodes, func(x *node) bool { return x == n })
	delete(w.timers, n)
	for l := range w.links {
		if l.peer != n {
			continue
		}
		if noticed {
			delete(w.links, l)
			w.step(l.hub, PeerLeft{Call: l.call, User: n.user, Session: n.session, Reason: ReasonMedia})
		}
	}
}

// linked reports whether the hub has media with device n in call id.
func (w *world) linked(id string, hub, n *node) bool { return w.links[link{id, hub, n}] }

func withGrace(c *Config) { c.RejoinGrace = grace }

// doorCallsAlice has a door station (the hub, with a rejoin grace) call
// alice's phone, which answers.
func doorCallsAlice(t *testing.T) (*world, *node, *node, string) {
	w := newWorld(t)
	door, alice := w.add("door", "1", withGrace), w.add("alice", "1")
	w.step(door, Call{Users: []string{"alice"}, Type: Video})
	w.deliver()
	w.step(alice, Accept{})
	w.deliver()
	if door.m.State() != InCall || alice.m.State() != InCall {
		t.Fatalf("after accept: %s", w.states())
	}
	return w, door, alice, door.m.CallID()
}

// The app is reloaded in a call: a new login session of the same user, an
// idle machine, asks the hub to take it back within the grace, and the
// call goes on with media to the new device.
func TestRejoinAfterReload(t *testing.T) {
	w, door, alice, id := doorCallsAlice(t)
	w.advance(10 * time.Second)
	w.vanish(alice, true)
	if door.m.State() != InCall {
		t.Fatalf("the door ended the call at once: %s", door.events)
	}
	w.advance(grace / 2)
	again := w.add("alice", "2")
	w.step(again, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	if door.m.State() != InCall || again.m.State() != InCall {
		t.Fatalf("after the rejoin: %s", w.states())
	}
	if !w.linked(id, door, again) {
		t.Fatalf("no media between the door and the new device: %v", w.links)
	}
	has(t, again, "UserEnter door")
	// The grace timer was stopped: the call outlives it.
	w.advance(2 * grace)
	if door.m.State() != InCall || again.m.State() != InCall {
		t.Fatalf("the grace timer ended a rejoined call: %s", w.states())
	}
	// A second reload, on a device the media has not seen go yet.
	w.vanish(again, false)
	third := w.add("alice", "3")
	w.step(third, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	if door.m.State() != InCall || third.m.State() != InCall || !w.linked(id, door, third) {
		t.Fatalf("after the second rejoin: %s %v", w.states(), w.links)
	}
	if w.linked(id, door, again) {
		t.Fatal("the door kept media with the replaced device")
	}
	w.advance(5 * time.Second)
	w.step(third, Hangup{})
	w.deliver()
	if !w.allIdle() || len(w.links) != 0 {
		t.Fatalf("after hangup: %s %v", w.states(), w.links)
	}
	has(t, door, "CallEnd reason=hangup duration=1m5s")
}

// The grace runs out: the door ends the call (the party's media is gone),
// and a rejoin after that is refused; the app's call ends saying why.
func TestRejoinAfterGrace(t *testing.T) {
	w, door, alice, id := doorCallsAlice(t)
	w.vanish(alice, true)
	w.advance(grace - time.Millisecond)
	if door.m.State() != InCall {
		t.Fatalf("the door gave up before the grace ran out: %s", door.events)
	}
	w.advance(time.Millisecond)
	if door.m.State() != Idle {
		t.Fatalf("the door still in the call after the grace: %s", door.m.State())
	}
	has(t, door, "UserLeave alice", "CallEnd reason=media duration=20s")
	again := w.add("alice", "2")
	w.step(again, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	if again.m.State() != Idle {
		t.Fatalf("the late rejoin: %s", w.states())
	}
	has(t, again, "CallEnd reason=call over duration=0s")
	if len(w.links) != 0 {
		t.Fatalf("media left: %v", w.links)
	}
}

// The grace has run out but its timer has not come in yet when the rejoin
// arrives: the clock decides, not the order of the inputs.
func TestRejoinRacesTheGraceTimer(t *testing.T) {
	w, door, alice, id := doorCallsAlice(t)
	w.vanish(alice, true)
	again := w.add("alice", "2")
	w.now = w.now.Add(grace) // the timer is due, not fired
	delete(w.timers[door], Timer{Kind: TimerRejoin, Call: id, User: "alice"})
	w.step(again, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
	has(t, again, "CallEnd reason=call over duration=0s")
	has(t, door, "CallEnd reason=media duration=20s")
}

// Only the user who was in the call may take it back: another user, a
// user who was invited but never in the call, and a call that is not the
// hub's are refused, and the call goes on.
func TestRejoinRefused(t *testing.T) {
	w := newWorld(t)
	multi := func(c *Config) { c.MultiDevice = true }
	door, alice, bob := w.add("door", "1", withGrace), w.add("alice", "1"), w.add("bob", "1", multi)
	w.step(door, Call{Users: []string{"alice", "bob"}, Type: Video})
	w.deliver()
	w.step(alice, Accept{})
	w.deliver()
	id := door.m.CallID()
	w.vanish(alice, true)
	mallory := w.add("mallory", "1")
	w.step(mallory, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	has(t, mallory, "CallEnd reason=not in the call duration=0s")
	// bob rings (pending): he was never in the call.
	bob2 := w.add("bob", "2", multi)
	w.step(bob2, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	has(t, bob2, "CallEnd reason=not in the call duration=0s")
	again := w.add("alice", "2")
	w.step(again, Rejoin{Call: "another", Hub: "door", Type: Video})
	w.deliver()
	has(t, again, "CallEnd reason=call over duration=0s")
	if door.m.State() != InCall || bob.m.State() != Ringing {
		t.Fatalf("a refused rejoin changed the call: %s", w.states())
	}
	// alice herself, within the grace, is taken back.
	w.step(again, Rejoin{Call: id, Hub: "door", Type: Video})
	w.deliver()
	if again.m.State() != InCall || !w.linked(id, door, again) {
		t.Fatalf("%s", w.states())
	}
	// Invalid requests fail locally.
	for _, in := range []Rejoin{{Call: id, Hub: "alice", Type: Video}, {Call: "bad id!", Hub: "door", Type: Video}, {Call: id, Hub: "door"}} {
		n := w.add("alice", "x"+in.Hub)
		w.step(n, in)
		if n.m.State() != Idle || len(n.events) == 0 || !slices.ContainsFunc(n.events, func(e string) bool { return len(e) > 5 && e[:5] == "Error" }) {
			t.Errorf("%+v: %s %q", in, n.m.State(), n.events)
		}
	}
}

// A hub without a grace (older behaviour, and the phone app's) drops a
// party whose media is lost at once; a rejoin then finds the call over.
func TestRejoinWithoutGrace(t *testing.T) {
	w := newWorld(t)
	door, alice := w.add("door", "1"), w.add("alice", "1")
	w.step(door, Call{Users: []string{"alice"}, Type: Audio})
	w.deliver()
	w.step(alice, Accept{})
	w.deliver()
	id := door.m.CallID()
	w.vanish(alice, true)
	if door.m.State() != Idle {
		t.Fatalf("door %s", door.m.State())
	}
	again := w.add("alice", "2")
	w.step(again, Rejoin{Call: id, Hub: "door", Type: Audio})
	w.deliver()
	has(t, again, "CallEnd reason=call over duration=0s")
}

// The app comes back from the background with its connection to the hub
// dead but the call still on: the same device asks again, the hub makes a
// new connection, and the call goes on. Without the hub's answer the
// connect timer ends the call.
func TestRejoinSameDevice(t *testing.T) {
	w, door, alice, id := doorCallsAlice(t)
	delete(w.links, link{id, door, alice})
	w.step(door, PeerLeft{Call: id, User: "alice", Session: "1", Reason: ReasonMedia})
	w.step(alice, Rejoin{})
	if alice.m.State() != Ringing {
		t.Fatalf("alice %s while rejoining, want ringing (connecting)", alice.m.State())
	}
	w.deliver()
	if door.m.State() != InCall || alice.m.State() != InCall || !w.linked(id, door, alice) {
		t.Fatalf("%s %v", w.states(), w.links)
	}
	// Asked again while the connection is still up: it starts over too.
	w.step(alice, Rejoin{Call: id})
	w.deliver()
	if door.m.State() != InCall || alice.m.State() != InCall {
		t.Fatalf("%s", w.states())
	}
	// The hub never answers (an older hub drops the message).
	w.step(alice, Rejoin{})
	w.lose()
	w.advance(DefaultInviteTimeout)
	if alice.m.State() != Idle {
		t.Fatalf("alice %s after the connect timeout", alice.m.State())
	}
	has(t, alice, "CallEnd reason=media duration=30s")
	// Nothing to rejoin now.
	w.step(alice, Rejoin{})
	if alice.m.State() != Idle || !slices.Contains(alice.events, "Error no call: no call to rejoin") {
		t.Fatalf("%s %q", alice.m.State(), alice.events)
	}
}

// Hanging up from the device whose media the hub gave up on (the app is
// still there, its connection is not) ends the call at once, not after the
// grace.
func TestLeaveWhileAway(t *testing.T) {
	w, door, alice, id := doorCallsAlice(t)
	delete(w.links, link{id, door, alice})
	w.step(door, PeerLeft{Call: id, User: "alice", Session: "1", Reason: ReasonMedia})
	if door.m.State() != InCall {
		t.Fatalf("door %s", door.m.State())
	}
	w.step(alice, Hangup{})
	w.deliver()
	if !w.allIdle() {
		t.Fatalf("after alice hung up while away: %s", w.states())
	}
	has(t, door, "UserLeave alice", "CallEnd reason=hangup duration=0s")
}
