package media_test

import (
	"context"
	"testing"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// TestGroupCallDeviceHub: three softphones in one call placed by the device.
// The device encodes its camera once; each softphone hears the device and
// the two others (forwarded by the hub without transcoding); one leaves and
// the others go on; when the last leaves the device's call ends.
func TestGroupCallDeviceHub(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 160, height: 120, fps: 10})
	tones := map[string]float64{"door": 440, "alice": 660, "bob": 880, "carol": 1100}
	softs := map[string]*party{}
	for _, u := range []string{"alice", "bob", "carol"} {
		softs[u] = newParty(t, env, u, partyOpts{tone: tones[u], autoAnswer: true})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Video, "alice", "bob", "carol")
	for u := range softs {
		dev.wait(ctx, 0, u+" entering", isEnter(u))
	}
	for u, p := range softs {
		for v := range tones {
			if v != u {
				checkTone(t, u, v, p.hear(ctx, v), tones[v])
			}
		}
	}
	for u := range softs {
		checkTone(t, "door", u, dev.hear(ctx, u), tones[u])
	}
	if got := dev.cam.EncodersRunning(); got != 1 {
		t.Errorf("device runs %d encoders for 3 viewers, want 1", got)
	}
	if got := dev.cam.VP8().EncodersStarted(); got != 0 {
		t.Errorf("device started %d VP8 encoders for phones that all take H.264, want 0", got)
	}
	for u, p := range softs {
		if n, _, _ := p.videoFrames("door"); n == 0 {
			t.Errorf("%s received no video from door", u)
		}
	}

	// carol leaves; alice and bob go on hearing each other.
	mark := dev.eventCount()
	if err := softs["carol"].ep.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	dev.wait(ctx, mark, "carol leaving", func(e calling.Event) bool { l, ok := e.(calling.UserLeave); return ok && l.User == "carol" })
	checkTone(t, "alice", "bob", softs["alice"].hear(ctx, "bob"), 880)
	checkTone(t, "bob", "alice", softs["bob"].hear(ctx, "alice"), 660)
	checkTone(t, "alice", "door", softs["alice"].hear(ctx, "door"), 440)

	if err := softs["alice"].ep.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	if err := softs["bob"].ep.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	dev.wait(ctx, mark, "call end", isCallEnd)
	if got := dev.ep.State(); got != calling.Idle {
		t.Errorf("device state %v after the last party left", got)
	}
}
