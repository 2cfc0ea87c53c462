package media_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

func isInvited(e calling.Event) bool { _, ok := e.(calling.Invited); return ok }

// waitFrames waits until p has received n more video frames from user than
// it had when called.
func (p *party) waitFrames(ctx context.Context, user string, n int) {
	p.t.Helper()
	start, _, _ := p.videoFrames(user)
	for {
		got, _, _ := p.videoFrames(user)
		if got >= start+n {
			return
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("%s: %d of %d video frames from %s: %v", p.user, got-start, n, user, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logHas reports whether a line of log contains every one of parts.
func logHas(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// waitLog waits until a line of p's log contains every one of parts.
func (p *party) waitLog(ctx context.Context, parts ...string) {
	p.t.Helper()
	for !logHas(p.logs.String(), parts...) {
		select {
		case <-ctx.Done():
			p.t.Fatalf("%s: no log line with %q: %v", p.user, parts, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// do runs a command, failing the test on error.
func (p *party) do(ctx context.Context, in calling.Input) {
	p.t.Helper()
	if err := p.ep.Do(ctx, in); err != nil {
		p.t.Fatalf("%s: %T: %v", p.user, in, err)
	}
}

// entered reports whether p has seen a UserEnter.
func (p *party) entered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if _, ok := e.(calling.UserEnter); ok {
			return true
		}
	}
	return false
}

// TestPreviewThenAnswer: early media. The device (test pattern camera,
// 440 Hz microphone) calls a softphone (880 Hz) that asks for a preview
// while it rings: it receives the door's video and hears it, sends nothing,
// and nobody is present yet. It then answers, and the call goes on the same
// connection with audio both ways and the video going on.
func TestPreviewThenAnswer(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 320, height: 240, fps: 15})
	soft := newParty(t, env, "alice", partyOpts{tone: 880})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	dev.call(ctx, calling.Video, "alice")
	soft.wait(ctx, 0, "the invitation", isInvited)
	soft.do(ctx, calling.Preview{})

	soft.waitFrames(ctx, "door", 15)
	checkTone(t, "alice (previewing)", "door", soft.hear(ctx, "door"), 440)
	if st := soft.ep.State(); st != calling.Ringing {
		t.Errorf("alice is %s while previewing, want ringing", st)
	}
	if st := dev.ep.State(); st != calling.Dialing {
		t.Errorf("the door is %s while alice previews, want dialing", st)
	}
	if dev.entered() || soft.entered() {
		t.Errorf("someone is present before alice answered: door %s; alice %s", dev.describeEvents(), soft.describeEvents())
	}
	// alice's answer was receive-only: the door has heard nothing from her
	// after more than a second of media the other way.
	if r := dev.recorder("alice"); r != nil {
		t.Errorf("the door received %d samples from alice before she answered", r.Total())
	}
	if n, _, _ := dev.videoFrames("alice"); n != 0 {
		t.Errorf("the door received %d video frames from alice before she answered", n)
	}

	soft.do(ctx, calling.Accept{})
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	soft.wait(ctx, 0, "door entering", isEnter("door"))
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	soft.waitFrames(ctx, "door", 15)

	// One connection from preview to call: connected once, never closed,
	// renegotiated when alice answered.
	log := dev.logs.String()
	if n := strings.Count(log, `msg="peer connected"`); n != 1 {
		t.Errorf("the door connected %d times, want 1 (the preview's connection kept)", n)
	}
	if strings.Contains(log, `msg="peer closed"`) {
		t.Error("the door closed a connection during the call")
	}
	if !strings.Contains(log, "previewing peer joins on its connection") {
		t.Error("the door did not renegotiate the preview's connection")
	}

	soft.do(ctx, calling.Hangup{})
	dev.wait(ctx, 0, "call end", isCallEnd)
	soft.wait(ctx, 0, "call end", isCallEnd)
}

// TestPreviewRingGroup: the doorbell rings two softphones that both
// preview; the first to answer gets the call on its connection, the other's
// preview is torn down (cancelled: answered elsewhere) and its video stops.
// A preview that is declined is torn down too.
func TestPreviewRingGroup(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true})
	alice := newParty(t, env, "alice", partyOpts{tone: 880})
	bob := newParty(t, env, "bob", partyOpts{tone: 660})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	ring := func() {
		for {
			err := dev.ep.Do(ctx, calling.Call{Users: []string{"alice", "bob"}, Type: calling.Video, RingGroup: true})
			if err == nil {
				return
			}
			if !errors.Is(err, calling.ErrNotLoggedIn) || ctx.Err() != nil {
				t.Fatalf("ring: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	ring()
	for _, p := range []*party{alice, bob} {
		p.wait(ctx, 0, "the invitation", isInvited)
		p.do(ctx, calling.Preview{})
	}
	for _, p := range []*party{alice, bob} {
		p.waitFrames(ctx, "door", 15)
	}

	alice.do(ctx, calling.Accept{})
	bob.wait(ctx, 0, "cancelled: answered elsewhere", func(e calling.Event) bool {
		c, ok := e.(calling.CallingCancel)
		return ok && c.Reason == calling.ReasonElsewhere
	})
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	checkTone(t, "alice", "door", alice.hear(ctx, "door"), 440)
	if r := dev.recorder("bob"); r != nil {
		t.Errorf("the door received %d samples from bob, who only previewed", r.Total())
	}

	// bob's preview is over: no frame arrives a second after the cancel
	// while alice's keep coming.
	time.Sleep(time.Second) // let frames in flight land
	bobFrames, _, _ := bob.videoFrames("door")
	alice.waitFrames(ctx, "door", 15)
	if n, _, _ := bob.videoFrames("door"); n != bobFrames {
		t.Errorf("bob received %d frames after his preview was cancelled", n-bobFrames)
	}
	if !logHas(dev.logs.String(), `msg="peer closed"`, "user=bob") {
		t.Error("the door kept bob's preview connection")
	}

	alice.do(ctx, calling.Hangup{})
	dev.wait(ctx, 0, "call end", isCallEnd)
	// The door's media leaves the call (closing alice's connection) on its
	// own goroutine, after the call-end event: wait for that before counting.
	for strings.Count(dev.logs.String(), `msg="media left"`) < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the door's media never left the first call")
		case <-time.After(10 * time.Millisecond):
		}
	}

	// Declined after a preview: the door closes the connection, nobody
	// is left and the call ends.
	from, aliceFrom, bobFrom := dev.eventCount(), alice.eventCount(), bob.eventCount()
	closed := strings.Count(dev.logs.String(), `msg="peer closed"`)
	ring()
	alice.wait(ctx, aliceFrom, "the invitation", isInvited)
	bob.wait(ctx, bobFrom, "the invitation", isInvited)
	alice.do(ctx, calling.Preview{})
	alice.waitFrames(ctx, "door", 10)
	alice.do(ctx, calling.Reject{})
	bob.do(ctx, calling.Reject{})
	dev.wait(ctx, from, "call end", isCallEnd)
	// The connection closes on the media's goroutine, after the call-end
	// event: wait for it (or the test's deadline) before counting.
	for strings.Count(dev.logs.String(), `msg="peer closed"`) < closed+1 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	if got := strings.Count(dev.logs.String(), `msg="peer closed"`); got != closed+1 {
		t.Errorf("the door closed %d connections after alice declined her preview, want 1", got-closed)
	}
}

// TestPreviewTwoDevicesOneAnswers: alice is signed in on two devices
// (phone1 at 880 Hz, phone2 at 660 Hz). The door rings her; both devices
// preview its video, each on a connection of its own. phone2 answers: it
// gets the call on its preview's connection and its media keeps flowing
// both ways, while phone1 stops ringing (answered elsewhere) and the door
// closes phone1's connection only.
func TestPreviewTwoDevicesOneAnswers(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true})
	phone1 := newParty(t, env, "alice", partyOpts{tone: 880, session: "phone1"})
	phone2 := newParty(t, env, "alice", partyOpts{tone: 660, session: "phone2"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	dev.call(ctx, calling.Video, "alice")
	for _, p := range []*party{phone1, phone2} {
		p.wait(ctx, 0, "the invitation", isInvited)
		p.do(ctx, calling.Preview{})
	}
	for _, p := range []*party{phone1, phone2} {
		p.waitFrames(ctx, "door", 15)
	}
	for _, s := range []string{"phone1", "phone2"} {
		dev.waitLog(ctx, `msg="peer connected"`, "user=alice", "session="+s)
	}

	phone2.do(ctx, calling.Accept{})
	phone1.wait(ctx, 0, "cancelled: answered elsewhere", func(e calling.Event) bool {
		c, ok := e.(calling.CallingCancel)
		return ok && c.Reason == calling.ReasonElsewhere
	})
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	phone2.wait(ctx, 0, "door entering", isEnter("door"))
	// The door closed phone1's preview and phone1 left its media; the
	// door's connection with phone2 is the one of its preview.
	dev.waitLog(ctx, `msg="peer closed"`, "user=alice", "session=phone1")
	phone1.waitLog(ctx, `msg="media left"`)
	dev.waitLog(ctx, "previewing peer joins on its connection", "session=phone2")

	// phone2's media flows both ways after phone1 is gone: the door hears
	// phone2 (660 Hz, not phone1's 880 Hz), phone2 hears and sees the door.
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 660)
	checkTone(t, "alice on phone2", "door", phone2.hear(ctx, "door"), 440)
	phone2.waitFrames(ctx, "door", 15)
	after, _, _ := phone1.videoFrames("door")
	phone2.waitFrames(ctx, "door", 15)
	if n, _, _ := phone1.videoFrames("door"); n != after {
		t.Errorf("phone1 received %d frames after it stopped ringing", n-after)
	}
	if st := dev.ep.State(); st != calling.InCall {
		t.Errorf("the door is %s, want in_call", st)
	}
	if st := phone2.ep.State(); st != calling.InCall {
		t.Errorf("phone2 is %s, want in_call", st)
	}
	log := dev.logs.String()
	if logHas(log, `msg="peer closed"`, "session=phone2") || logHas(log, `msg="peer lost"`) {
		t.Error("the door closed or lost phone2's connection during the call")
	}
	if n := strings.Count(log, `msg="peer connected"`); n != 2 {
		t.Errorf("the door connected %d times, want 2 (one preview per device, phone2's kept)", n)
	}

	phone2.do(ctx, calling.Hangup{})
	dev.wait(ctx, 0, "call end", isCallEnd)
	phone2.wait(ctx, 0, "call end", isCallEnd)
}
