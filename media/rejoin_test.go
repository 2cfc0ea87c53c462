package media_test

import (
	"context"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
)

// event returns p's i-th event.
func (p *party) event(i int) calling.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[i]
}

// vanish takes p away as a reloaded app goes: its signaling and its media
// stop without a goodbye (no leave, no hangup).
func (p *party) vanish(ctx context.Context) {
	p.t.Helper()
	if err := p.ep.Client().Close(ctx); err != nil {
		p.t.Fatalf("%s: close signaling: %v", p.user, err)
	}
	if err := p.media.Close(); err != nil {
		p.t.Fatalf("%s: close media: %v", p.user, err)
	}
}

// rejoin asks, from p's new device, to be taken back into call id of hub,
// retrying while the login that follows the link coming up is on its way.
func (p *party) rejoin(ctx context.Context, id, hub string) {
	p.t.Helper()
	for {
		err := p.ep.Do(ctx, calling.Rejoin{Call: id, Hub: hub, Type: calling.Audio})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			p.t.Fatalf("%s rejoins %s: %v", p.user, id, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRejoinAfterReload: the door calls alice, who answers; her app goes
// away without a word (a reload) and comes back as a new device of hers,
// which asks to be taken back: the door connects media to it and each
// hears the other again, over real pion peers through the embedded broker.
func TestRejoinAfterReload(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, rejoinGrace: 30 * time.Second})
	first := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, session: "first"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Audio, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	id := dev.ep.CallID()

	mark := dev.eventCount()
	first.vanish(ctx)
	again := newParty(t, env, "alice", partyOpts{tone: 660, session: "again"})
	again.rejoin(ctx, id, "door")
	again.wait(ctx, 0, "door entering", isEnter("door"))
	dev.wait(ctx, mark, "alice entering again", isEnter("alice"))
	checkTone(t, "alice (again)", "door", again.hear(ctx, "door"), 440)
	checkTone(t, "door", "alice (again)", dev.hear(ctx, "alice"), 660)
	if dev.ep.State() != calling.InCall || dev.ep.CallID() != id {
		t.Fatalf("door %s in call %q, want in_call in %q; events: %s", dev.ep.State(), dev.ep.CallID(), id, dev.describeEvents())
	}
	for i := mark; i < dev.eventCount(); i++ {
		if isCallEnd(dev.event(i)) {
			t.Fatalf("the door ended the call: %s", dev.describeEvents())
		}
	}
	if err := again.ep.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	dev.wait(ctx, mark, "call end", isCallEnd)
}

// TestRejoinAfterGrace: alice's app stays away longer than the door's
// grace: the door ends the call, and her rejoin afterwards is refused: her
// call ends at once with the reason.
func TestRejoinAfterGrace(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, rejoinGrace: time.Second,
		cfg: media.Config{ICERestartTimeout: 2 * time.Second}})
	first := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, session: "first"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Audio, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	id := dev.ep.CallID()
	first.vanish(ctx)
	end := dev.wait(ctx, 0, "call end", isCallEnd)
	if r := dev.event(end).(calling.CallEnd).Reason; r != calling.ReasonMedia {
		t.Errorf("door's call ended with %s, want media", r)
	}
	again := newParty(t, env, "alice", partyOpts{tone: 660, session: "again"})
	again.rejoin(ctx, id, "door")
	i := again.wait(ctx, 0, "call end", isCallEnd)
	if r := again.event(i).(calling.CallEnd).Reason; r != calling.ReasonCallOver {
		t.Errorf("the late rejoin ended with %s, want %s", r, calling.ReasonCallOver)
	}
	if again.ep.State() != calling.Idle || dev.ep.State() != calling.Idle {
		t.Errorf("door %s, alice %s, want both idle", dev.ep.State(), again.ep.State())
	}
}
