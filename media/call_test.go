package media_test

import (
	"context"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// TestVideoCallDeviceHub: the device (test pattern camera, 440 Hz
// microphone) calls a softphone (880 Hz) that answers; each hears the other
// and the softphone's H.264 decodes to frames of the configured size at the
// configured rate.
func TestVideoCallDeviceHub(t *testing.T) {
	ffprobe := needFFmpeg(t)
	t.Run("embedded", func(t *testing.T) {
		videoCallDeviceHub(t, ffprobe, mqtttest.StartEmbedded(t, mqtttest.Options{}))
	})
	t.Run("mosquitto", func(t *testing.T) {
		videoCallDeviceHub(t, ffprobe, mqtttest.StartMosquitto(t, map[string]string{"door": "pw-door", "alice": "pw-alice"}, nil))
	})
}

func videoCallDeviceHub(t *testing.T, ffprobe string, env *mqtttest.Env) {
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 320, height: 240, fps: 15})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Video, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	soft.wait(ctx, 0, "door entering", isEnter("door"))

	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	soft.wait(ctx, 0, "door's video", func(e calling.Event) bool {
		v, ok := e.(calling.UserVideoAvailable)
		return ok && v.User == "door" && v.Available
	})

	// Three seconds of video.
	start, _, _ := soft.videoFrames("door")
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	n, times, data := soft.videoFrames("door")
	if n-start < 20 {
		t.Fatalf("alice received %d frames in 3 s", n-start)
	}
	if fps := frameRate(times); fps < 15*0.8 || fps > 15*1.2 {
		t.Errorf("frame rate %.1f fps, want 15 ±20%%", fps)
	}
	frames, w, h := probe(t, ffprobe, data, "received.h264")
	t.Logf("alice received %d access units (%.1f fps), ffprobe decoded %d frames of %dx%d", n, frameRate(times), frames, w, h)
	if w != 320 || h != 240 {
		t.Errorf("decoded size %dx%d, want 320x240", w, h)
	}
	if frames < n*9/10 {
		t.Errorf("ffprobe decoded %d of %d access units", frames, n)
	}
	if got := dev.cam.EncodersRunning(); got != 1 {
		t.Errorf("device runs %d encoders, want 1", got)
	}

	if err := soft.ep.Do(ctx, calling.Hangup{}); err != nil {
		t.Fatal(err)
	}
	dev.wait(ctx, 0, "call end", isCallEnd)
	soft.wait(ctx, 0, "call end", isCallEnd)
	// With no call left the camera is switched off: nothing is captured or
	// encoded while idle.
	for st := dev.cam.Status(); st.Enabled || st.EncodersRunning != 0; st = dev.cam.Status() {
		select {
		case <-ctx.Done():
			t.Fatalf("camera still on after the call: %+v", st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestAudioCallDeviceEngine: the device runs its real audio engine (null
// backend, 440 Hz tone microphone) and calls a softphone (880 Hz): the
// softphone hears 440 Hz, the device's speaker mix carries 880 Hz and the
// device reports the softphone's voice level.
func TestAudioCallDeviceEngine(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, engine: true})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dev.call(ctx, calling.Audio, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	checkTone(t, "door", "alice (speaker mix)", dev.hear(ctx, "mix"), 880)
	dev.wait(ctx, 0, "alice's voice level", func(e calling.Event) bool {
		v, ok := e.(calling.UserVoiceVolume)
		return ok && v.User == "alice" && v.Volume > 30
	})
}
