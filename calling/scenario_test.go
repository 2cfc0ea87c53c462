package calling

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func has(t *testing.T, n *node, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(n.events, w) {
			t.Errorf("%s/%s never saw %q; saw %q", n.user, n.session, w, n.events)
		}
	}
}

func TestWorldOneToOne(t *testing.T) {
	for _, who := range []string{"caller", "callee"} {
		t.Run("hangup by "+who, func(t *testing.T) {
			w := newWorld(t)
			a, b := w.add("alice", "1"), w.add("bob", "1")
			w.step(a, Call{Users: []string{"bob"}, Type: Video})
			w.deliver()
			if b.m.State() != Ringing || a.m.State() != Dialing {
				t.Fatalf("after invite: %s", w.states())
			}
			w.step(b, Accept{})
			w.deliver()
			if a.m.State() != InCall || b.m.State() != InCall {
				t.Fatalf("after accept: %s", w.states())
			}
			w.advance(42 * time.Second)
			if who == "caller" {
				w.step(a, Hangup{})
			} else {
				w.step(b, Hangup{})
			}
			w.deliver()
			if !w.allIdle() {
				t.Fatalf("after hangup: %s", w.states())
			}
			has(t, a, "UserEnter bob")
			has(t, b, "Invited sponsor=alice users=bob group= type=video", "UserEnter alice")
			// The other side sees the leave; one's own hangup reports only the end.
			if who == "caller" {
				has(t, b, "UserLeave alice", "CallEnd reason=hangup duration=42s")
			} else {
				has(t, a, "UserLeave bob", "CallEnd reason=hangup duration=42s")
			}
			if len(w.links) != 0 {
				t.Errorf("media links left: %v", w.links)
			}
		})
	}
}

func TestWorldBusyAndNoAnswer(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.add("alice", "1"), w.add("bob", "1"), w.add("carol", "1")
	w.step(a, Call{Users: []string{"bob"}, Type: Audio})
	w.deliver()
	w.step(c, Call{Users: []string{"bob"}, Type: Audio})
	w.deliver()
	has(t, c, "LineBusy bob", "CallEnd reason=busy duration=0s")
	if b.m.State() != Ringing || c.m.State() != Idle {
		t.Fatalf("busy changed the callee's state: %s", w.states())
	}
	w.advance(31 * time.Second)
	has(t, a, "NoResp bob")
	has(t, b, "CallingTimeout")
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
}

// The caller's timeout message is lost (the broker was down): the callee's
// own safety timer still ends the ringing.
func TestWorldLostTimeoutMessage(t *testing.T) {
	w := newWorld(t)
	a, b := w.add("alice", "1"), w.add("bob", "1")
	w.step(a, Call{Users: []string{"bob"}, Type: Audio})
	w.deliver()
	w.dropNext = true // the next message sent (alice's timeout) is lost
	w.advance(30 * time.Second)
	if a.m.State() != Idle || b.m.State() != Ringing {
		t.Fatalf("%s", w.states())
	}
	w.advance(RingGrace)
	has(t, b, "CallingTimeout")
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
}

func TestWorldGroupCallFirstAnswerTakesIt(t *testing.T) {
	w := newWorld(t)
	w.groups["residents"] = []string{"door", "alice", "bob", "carol"}
	d := w.add("door", "1")
	a, b, c := w.add("alice", "1"), w.add("bob", "1"), w.add("carol", "1")
	w.step(d, Call{Users: []string{"alice", "bob", "carol"}, Type: Video, Group: "residents"})
	w.deliver()
	for _, n := range []*node{a, b, c} {
		if n.m.State() != Ringing {
			t.Fatalf("%s not ringing: %s", n.user, w.states())
		}
	}
	w.step(a, Accept{})
	w.step(b, Reject{})
	w.deliver()
	has(t, d, "UserEnter alice", "Reject bob")
	has(t, a, "UserEnter door", "Reject bob")
	w.advance(31 * time.Second)
	has(t, d, "NoResp carol")
	has(t, c, "CallingTimeout")
	if d.m.State() != InCall || a.m.State() != InCall {
		t.Fatalf("%s", w.states())
	}
	w.step(a, Hangup{})
	w.deliver()
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
}

func TestWorldGroupWithoutIDRelaysMembers(t *testing.T) {
	w := newWorld(t)
	d := w.add("door", "1")
	a, b := w.add("alice", "1"), w.add("bob", "1")
	w.step(d, Call{Users: []string{"alice", "bob"}, Type: Video})
	w.deliver()
	w.step(a, Accept{})
	w.deliver()
	w.step(b, Accept{})
	w.deliver()
	has(t, a, "UserEnter door", "UserEnter bob")
	has(t, b, "UserEnter door", "UserEnter alice")
	w.step(b, Hangup{})
	w.deliver()
	has(t, a, "UserLeave bob")
	if d.m.State() != InCall || a.m.State() != InCall || b.m.State() != Idle {
		t.Fatalf("one leaving ended the others' call: %s", w.states())
	}
	w.step(a, Hangup{})
	w.deliver()
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
	has(t, d, "CallEnd reason=hangup duration=0s")
}

// Early media: the ringing phone previews, then answers on the same media.
func TestWorldPreviewThenAnswer(t *testing.T) {
	w := newWorld(t)
	d, a := w.add("door", "1"), w.add("alice", "1")
	w.step(d, Call{Users: []string{"alice"}, Type: Video, RingGroup: true})
	w.deliver()
	w.step(a, Preview{})
	w.deliver()
	if len(w.links) != 1 || a.m.State() != Ringing || d.m.State() != Dialing {
		t.Fatalf("preview: links %v, %s", w.links, w.states())
	}
	w.step(a, Accept{})
	w.deliver()
	if a.m.State() != InCall || d.m.State() != InCall {
		t.Fatalf("after accept: %s", w.states())
	}
	w.step(a, Hangup{})
	w.deliver()
	if !w.allIdle() || len(w.links) != 0 {
		t.Fatalf("after hangup: %s, links %v", w.states(), w.links)
	}
}

// ringTwoDevices has the door call alice, signed in on two devices
// (multi-device), and delivers the invitations.
func ringTwoDevices(t *testing.T) (w *world, door, phone1, phone2 *node) {
	w = newWorld(t)
	multi := func(c *Config) { c.MultiDevice = true }
	door = w.add("door", "1")
	phone1, phone2 = w.add("alice", "phone1", multi), w.add("alice", "phone2", multi)
	w.step(door, Call{Users: []string{"alice"}, Type: Video})
	w.deliver()
	return w, door, phone1, phone2
}

// The same user on two devices: both ring; one answers; the other stops.
func TestWorldTwoDevicesOneAnswers(t *testing.T) {
	w, d, p1, p2 := ringTwoDevices(t)
	if p1.m.State() != Ringing || p2.m.State() != Ringing {
		t.Fatalf("%s", w.states())
	}
	w.step(p2, Accept{})
	w.deliver()
	if p1.m.State() != Idle || p2.m.State() != InCall || d.m.State() != InCall {
		t.Fatalf("%s", w.states())
	}
	has(t, p1, "CallingCancel sponsor=door reason=elsewhere")
}

// The same user on two devices, both previewing the door's video while
// they ring: each device has media of its own with the door. One answers:
// the other stops ringing ("answered elsewhere") and its media ends, and
// the door's media with the device that answered stays up.
func TestWorldTwoDevicesPreviewOneAnswers(t *testing.T) {
	for _, declined := range []bool{false, true} {
		t.Run(map[bool]string{false: "accept", true: "decline"}[declined], func(t *testing.T) {
			w, d, p1, p2 := ringTwoDevices(t)
			w.step(p1, Preview{})
			w.step(p2, Preview{})
			w.deliver()
			if !w.links[link{d.m.CallID(), d, p1}] || !w.links[link{d.m.CallID(), d, p2}] || len(w.links) != 2 {
				t.Fatalf("both devices preview: links %v", w.links)
			}
			if declined {
				w.step(p2, Reject{})
				w.deliver()
				if !w.allIdle() || len(w.links) != 0 {
					t.Fatalf("after alice declined on phone2: %s, links %v", w.states(), w.links)
				}
				has(t, p1, "CallingCancel sponsor=door reason=elsewhere")
				return
			}
			w.step(p2, Accept{})
			w.deliver()
			if p1.m.State() != Idle || p2.m.State() != InCall || d.m.State() != InCall {
				t.Fatalf("after phone2 answered: %s", w.states())
			}
			has(t, p1, "CallingCancel sponsor=door reason=elsewhere")
			has(t, d, "UserEnter alice")
			if len(w.links) != 1 || !w.links[link{d.m.CallID(), d, p2}] {
				t.Fatalf("the door's media: %v, want phone2's only", w.links)
			}
			// phone1's connection closing, as the door's media layer may
			// report it late (phone1 closed its side when it stopped
			// ringing), and a stray leave from phone1, take nothing down;
			// long after, the call is still up on phone2's media.
			w.step(d, PeerLeft{Call: d.m.CallID(), User: "alice", Session: "phone1", Reason: ReasonMedia})
			w.step(d, Received{From: "alice", Msg: Message{V: 1, Type: MsgLeave, Call: d.m.CallID(), Session: "phone1"}})
			w.advance(5 * time.Minute)
			if p2.m.State() != InCall || d.m.State() != InCall || slices.Contains(d.events, "UserLeave alice") {
				t.Fatalf("phone1 stopping took phone2's call down: %s; door saw %q", w.states(), d.events)
			}
			w.step(p2, Hangup{})
			w.deliver()
			if !w.allIdle() || len(w.links) != 0 {
				t.Fatalf("after hangup: %s, links %v", w.states(), w.links)
			}
		})
	}
}

func TestWorldKickedOffline(t *testing.T) {
	w := newWorld(t)
	first := w.add("alice", "first")
	w.add("alice", "second")
	w.deliver()
	if first.m.LoggedIn() {
		t.Fatal("the first login is still logged in")
	}
	has(t, first, "KickedOffline")
}

// FuzzWorld drives several machines with random commands, message loss,
// presence changes and time, and checks after each step that idle machines
// neither ring nor hold media, and at the end, once every timer has had its
// chance, that every machine is idle (or in a call whose media is live on
// both sides) and, after everyone hangs up, idle.
func FuzzWorld(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 250, 17, 33})
	f.Add([]byte{7, 7, 7, 0, 9, 9, 1, 30, 40, 50, 60, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		w := newWorld(t)
		w.groups["g"] = []string{"a", "b", "c"}
		multi := func(c *Config) { c.MultiDevice = true; c.DoorUsers = []string{"b"} }
		// a asks for rings longer than the others' own timeout; c, a door
		// station, takes calls from a only.
		long := func(c *Config) { multi(c); c.InviteTimeout = time.Minute }
		door := func(c *Config) { multi(c); c.Callers = []string{"a"}; c.RejoinGrace = 20 * time.Second }
		nodes := []*node{w.add("a", "1", long), w.add("b", "1", multi), w.add("b", "2", multi), w.add("c", "1", door)}
		users := []string{"a", "b", "c"}
		last := ""
		for i := 0; i+1 < len(ops) && i < 400; i += 2 {
			n := nodes[int(ops[i+1])%len(nodes)]
			arg := int(ops[i+1] / 4)
			switch ops[i] % 15 {
			case 0:
				w.step(n, Call{Users: []string{users[arg%3]}, Type: Video})
			case 1:
				w.step(n, Call{Users: []string{users[arg%3], users[(arg+1)%3]}, Type: Audio, Group: []string{"", "g"}[arg%2]})
			case 2:
				w.step(n, Accept{})
			case 3:
				w.step(n, Reject{})
			case 4:
				w.step(n, Hangup{})
			case 5:
				w.step(n, LineBusy{})
			case 6:
				w.deliver()
			case 7:
				w.lose() // a signaling message is lost
			case 8:
				w.advance(time.Duration(arg) * time.Second)
			case 9:
				w.step(n, Presence{User: users[arg%3], Online: arg%2 == 0})
			case 10:
				w.step(n, OpenDoor{})
			case 11:
				w.step(n, SwitchToAudio{})
			case 12:
				w.step(n, Preview{})
			case 13:
				// A device asks to be taken back into its call, or into
				// the last call the world saw (a reloaded app).
				w.step(n, Rejoin{Call: []string{"", last}[arg%2], Hub: users[arg%3], Type: Video})
			case 14:
				w.breakLink(arg) // a connection fails for good
			}
			if id := n.m.CallID(); id != "" {
				last = id
			}
		}
		// Let everything settle: all timers fire.
		w.advance(10 * time.Minute)
		for _, n := range nodes {
			switch n.m.State() {
			case Idle:
			case InCall:
				// Only a call whose media is live may go on forever.
				live := false
				for l := range w.links {
					if l.call == n.m.CallID() && (l.hub == n || l.peer == n) {
						live = true
					}
				}
				if !live {
					t.Fatalf("%s/%s stuck in a call without media: %s", n.user, n.session, w.states())
				}
			default:
				t.Fatalf("%s/%s stuck %s after every timer fired: %s", n.user, n.session, n.m.State(), w.states())
			}
		}
		for _, n := range nodes {
			if n.m.State() != Idle {
				w.step(n, Hangup{})
				w.deliver()
			}
		}
		w.advance(time.Minute)
		if !w.allIdle() {
			t.Fatalf("not idle after everyone hung up: %s", w.states())
		}
		if len(w.links) != 0 {
			t.Fatalf("media outlived its calls: %v", w.links)
		}
	})
}

func TestMediaJoinErrorOnHub(t *testing.T) {
	m := newTestMachine("a")
	m.Step(time.Time{}, Login{})
	m.Step(time.Time{}, Call{Users: []string{"b"}, Type: Video})
	m.Step(time.Time{}, MediaJoined{Call: m.CallID(), Err: errors.New("no camera")})
	if m.State() != Idle {
		t.Fatalf("state %s after the hub's media failed to start", m.State())
	}
}

// A user whose phone the driver can push to rings while offline: the
// invitation goes out and stays pending through offline presence, while
// an offline user without push gets no invitation (NoResp at once).
func TestWorldPushableOfflineUserRings(t *testing.T) {
	w := newWorld(t)
	door := w.add("door", "1", func(c *Config) { c.Pushable = func(u string) bool { return u == "bob" } })
	bob := w.add("bob", "1")
	w.step(door, Presence{User: "bob", Online: false})
	w.step(door, Presence{User: "carol", Online: false})
	w.step(door, Call{Users: []string{"bob", "carol"}, Type: Video, RingGroup: true})
	has(t, door, "NoResp carol")
	if door.m.State() != Dialing {
		t.Fatalf("door %s, want dialing bob", door.m.State())
	}
	w.step(door, Presence{User: "bob", Online: false}) // the app closes again
	w.deliver()
	if bob.m.State() != Ringing {
		t.Fatalf("bob %s, want ringing", bob.m.State())
	}
	w.step(bob, Accept{})
	w.deliver()
	if door.m.State() != InCall || bob.m.State() != InCall {
		t.Fatalf("after accept: %s", w.states())
	}
	for _, e := range door.events {
		if e == "NoResp bob" {
			t.Fatalf("bob was given up while offline: %q", door.events)
		}
	}
}

// A stranger holding a token calls the door station: refused at once,
// without ringing; the stranger's call ends saying why.
func TestWorldStrangerCannotRingTheDoor(t *testing.T) {
	w := newWorld(t)
	door := w.add("door", "1", func(c *Config) { c.Callers = []string{"alice"} })
	mallory := w.add("mallory", "1", func(c *Config) { c.InviteTimeout = 5 * time.Minute })
	w.step(mallory, Call{Users: []string{"door"}, Type: Video})
	w.deliver()
	if door.m.State() != Idle || mallory.m.State() != Idle {
		t.Fatalf("%s", w.states())
	}
	has(t, door, "CallRefused from=mallory call=mallory11 reason=not allowed to call")
	has(t, mallory, "Reject door", "CallEnd reason=not allowed to call duration=0s")
	if door.tone != ToneNone {
		t.Errorf("the door played %s", door.tone)
	}
}

// A resident's phone asks for a 5-minute ring; the door rings for its own
// 30 s and then tells the phone, which stops waiting at once.
func TestWorldRingCappedAtOwnTimeout(t *testing.T) {
	w := newWorld(t)
	door := w.add("door", "1", func(c *Config) { c.Callers = []string{"alice"} })
	alice := w.add("alice", "1", func(c *Config) { c.InviteTimeout = 5 * time.Minute })
	w.step(alice, Call{Users: []string{"door"}, Type: Video})
	w.deliver()
	if door.m.State() != Ringing {
		t.Fatalf("%s", w.states())
	}
	w.advance(DefaultInviteTimeout - time.Second)
	if door.m.State() != Ringing || alice.m.State() != Dialing {
		t.Fatalf("before the door's timeout: %s", w.states())
	}
	w.advance(time.Second)
	if !w.allIdle() {
		t.Fatalf("at the door's timeout: %s", w.states())
	}
	has(t, door, "CallingTimeout")
	has(t, alice, "NoResp door", "CallEnd reason=timeout duration=0s")
}

// The invitation is lost (the phone was reconnecting after a broker
// restart); when the phone's presence comes back online, the ring reaches
// it while the call still rings it, and it can answer.
func TestWorldRingReachesAPhoneThatComesBack(t *testing.T) {
	w := newWorld(t)
	door, alice := w.add("door", "1"), w.add("alice", "1")
	w.deliver()
	w.step(door, Call{Users: []string{"alice"}, Type: Video, RingGroup: true})
	w.lose()
	w.deliver()
	if alice.m.State() != Idle || door.m.State() != Dialing {
		t.Fatalf("the invitation was not lost: %s", w.states())
	}
	w.advance(8 * time.Second)
	w.step(door, Presence{User: "alice", Online: true})
	w.deliver()
	if alice.m.State() != Ringing {
		t.Fatalf("the invitation did not reach the phone that came back: %s", w.states())
	}
	w.step(alice, Accept{})
	w.deliver()
	if door.m.State() != InCall || alice.m.State() != InCall {
		t.Fatalf("%s", w.states())
	}
	// A phone that comes back after the call stopped ringing it gets nothing.
	w.step(alice, Hangup{})
	w.deliver()
	w.step(door, Call{Users: []string{"alice"}, Type: Video})
	w.lose()
	w.advance(DefaultInviteTimeout)
	w.step(door, Presence{User: "alice", Online: true})
	w.deliver()
	if !w.allIdle() {
		t.Fatalf("%s", w.states())
	}
}
