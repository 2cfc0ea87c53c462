package media_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
)

// TestNoCamera: a device without a camera places a video call; it says so,
// and the call carries audio both ways.
func TestNoCamera(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Video, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	if !strings.Contains(dev.logs.String(), "no camera") {
		t.Errorf("the device does not say its camera is missing")
	}
}

// TestNoSoundCard: a device without an audio engine but with a camera
// places a video call; it says so, and the softphone sees its picture.
func TestNoSoundCard(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{noAudio: true, camera: true, width: 160, height: 120, fps: 10})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Video, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	for {
		if n, _, _ := soft.videoFrames("door"); n >= 5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no video from a device without sound")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(dev.logs.String(), "no audio engine") {
		t.Errorf("the device does not say its audio is missing")
	}
}

// TestNothingToSend: without audio and without video a call cannot join.
func TestNothingToSend(t *testing.T) {
	in := make(chan calling.Input, 16)
	m, err := media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Post: func(i calling.Input) { in <- i }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Do(calling.JoinMedia{Call: "c1", Type: calling.Audio, Hub: "door", IsHub: true})
	select {
	case got := <-in:
		j, ok := got.(calling.MediaJoined)
		if !ok || j.Err == nil {
			t.Fatalf("got %#v, want MediaJoined with an error", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no MediaJoined")
	}
}

// TestOfferFeedback: the hub's offer carries the feedback browsers need to
// ask for retransmissions and key frames, and transport-wide congestion
// control.
func TestOfferFeedback(t *testing.T) {
	in := make(chan calling.Input, 64)
	a, err := media.NewSoftAudio(media.SoftAudioConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m, err := media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Audio: a,
		OnVideoFrame: func(string, []byte, time.Time) {}, Post: func(i calling.Input) { in <- i }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Do(calling.JoinMedia{Call: "c1", Type: calling.Video, Hub: "door", IsHub: true})
	m.Do(calling.ConnectPeer{Call: "c1", User: "alice"})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-in:
			out, ok := got.(calling.MediaOut)
			if !ok || out.Msg.Type != calling.MsgOffer {
				continue
			}
			var sd webrtc.SessionDescription
			sd.SDP = out.Msg.SDP
			for _, want := range []string{"a=rtcp-fb:102 nack\r\n", "a=rtcp-fb:102 nack pli", "a=rtcp-fb:102 transport-cc",
				"profile-level-id=42e01f", "packetization-mode=1", "opus/48000/2"} {
				if !strings.Contains(sd.SDP, want) {
					t.Errorf("offer lacks %q:\n%s", want, sd.SDP)
				}
			}
			return
		case <-deadline:
			t.Fatal("no offer")
		}
	}
}
