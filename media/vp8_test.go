package media_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/media/whep/wheptest"
)

// vp8Only is the media configuration of a softphone that, like a Firefox
// without its OpenH264 plugin, takes VP8 and not H.264.
var vp8Only = media.Config{VideoCodecs: []string{media.CodecVP8}}

// onVP8 records a VP8 frame from user, with its IVF frame header (RFC 6386
// frames in the container ffprobe reads).
func (p *party) onVP8(user string, frame []byte, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := sinkOf(p.vp8, user, at)
	var hdr [12]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(frame)))
	binary.LittleEndian.PutUint64(hdr[4:], uint64(v.frames))
	v.add(frame, camera.IsVP8KeyFrame(frame), at, hdr[:])
}

// vp8Frames returns the number of VP8 frames and key frames from user, and
// the frames as an IVF file.
func (p *party) vp8Frames(user string) (frames, keys int, ivf []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.vp8[user]
	if v == nil {
		return 0, 0, nil
	}
	var hdr [32]byte
	copy(hdr[:], "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint32(hdr[16:], 30) // time base 1/30
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(v.frames))
	return v.frames, v.keys, append(hdr[:], v.data.Bytes()...)
}

// until waits for cond, failing the test with what at the deadline.
func until(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestVP8Viewer: the device calls a softphone that takes VP8 and not
// H.264. It gets the camera's picture from the VP8 encoder, started for it
// and stopped when the call ends: frames that ffprobe decodes at the
// camera's size, starting with a key frame; its own H.264 would not be
// decodable there, so none is sent to it.
func TestVP8Viewer(t *testing.T) {
	ffprobe := needFFmpeg(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 320, height: 240, fps: 15})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, cfg: vp8Only})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	dev.call(ctx, calling.Video, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	until(ctx, t, "30 VP8 frames at alice", func() bool { n, _, _ := soft.vp8Frames("door"); return n >= 30 })
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	if n, _, _ := soft.videoFrames("door"); n != 0 {
		t.Errorf("alice, who takes no H.264, received %d H.264 frames", n)
	}
	if got := dev.cam.VP8().EncodersRunning(); got != 1 {
		t.Errorf("the door runs %d VP8 encoders for its VP8 viewer, want 1", got)
	}
	n, keys, ivf := soft.vp8Frames("door")
	if keys == 0 {
		t.Error("no VP8 key frame arrived")
	}
	frames, w, h := probe(t, ffprobe, ivf, "received.ivf")
	if w != 320 || h != 240 || frames < n*9/10 {
		t.Errorf("ffprobe decodes %d of %d frames at %dx%d, want most at 320x240", frames, n, w, h)
	}
	if !logHas(dev.logs.String(), `msg="video to party"`, "codec=VP8") {
		t.Error("the door does not log that it sends alice VP8")
	}

	soft.do(ctx, calling.Hangup{})
	dev.wait(ctx, 0, "call end", isCallEnd)
	until(ctx, t, "the VP8 encoder stopping", func() bool { return dev.cam.VP8().EncodersRunning() == 0 })
	if u := dev.cam.VP8().Users(); u != 0 {
		t.Errorf("the VP8 encoder has %d holders after the call", u)
	}
	if s := dev.cam.VP8().EncodersStarted(); s != 1 {
		t.Errorf("%d VP8 encoders started for one viewer, want 1", s)
	}
}

// TestVP8AndH264Viewers: one call from the device to a softphone that takes
// H.264 and two that take only VP8. One encoder per codec serves them: the
// H.264 one and a single VP8 one shared by both VP8 viewers. When the last
// VP8 viewer leaves, the VP8 encoder stops and the H.264 viewer's picture
// goes on.
func TestVP8AndH264Viewers(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 160, height: 120, fps: 10})
	alice := newParty(t, env, "alice", partyOpts{tone: 660, autoAnswer: true})
	bob := newParty(t, env, "bob", partyOpts{tone: 880, autoAnswer: true, cfg: vp8Only})
	carol := newParty(t, env, "carol", partyOpts{tone: 1100, autoAnswer: true, cfg: vp8Only})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	dev.call(ctx, calling.Video, "alice", "bob", "carol")
	for _, u := range []string{"alice", "bob", "carol"} {
		dev.wait(ctx, 0, u+" entering", isEnter(u))
	}
	alice.waitFrames(ctx, "door", 10)
	for _, p := range []*party{bob, carol} {
		until(ctx, t, p.user+" receiving VP8", func() bool { n, _, _ := p.vp8Frames("door"); return n >= 10 })
	}
	checkTone(t, "bob", "alice", bob.hear(ctx, "alice"), 660)
	checkTone(t, "alice", "carol", alice.hear(ctx, "carol"), 1100)
	if got := dev.cam.EncodersRunning(); got != 1 {
		t.Errorf("the door runs %d H.264 encoders, want 1", got)
	}
	if got, started := dev.cam.VP8().EncodersRunning(), dev.cam.VP8().EncodersStarted(); got != 1 || started != 1 {
		t.Errorf("the door runs %d VP8 encoders (%d started) for two VP8 viewers, want 1 (1)", got, started)
	}

	mark := dev.eventCount()
	bob.do(ctx, calling.Hangup{})
	dev.wait(ctx, mark, "bob leaving", func(e calling.Event) bool { l, ok := e.(calling.UserLeave); return ok && l.User == "bob" })
	n, _, _ := carol.vp8Frames("door")
	until(ctx, t, "carol's picture going on", func() bool { m, _, _ := carol.vp8Frames("door"); return m >= n+10 })
	if got := dev.cam.VP8().EncodersRunning(); got != 1 {
		t.Errorf("the VP8 encoder stopped while carol still watches (%d running)", got)
	}
	carol.do(ctx, calling.Hangup{})
	dev.wait(ctx, mark, "carol leaving", func(e calling.Event) bool { l, ok := e.(calling.UserLeave); return ok && l.User == "carol" })
	until(ctx, t, "the VP8 encoder stopping", func() bool { return dev.cam.VP8().EncodersRunning() == 0 })
	alice.waitFrames(ctx, "door", 10)
	if got := dev.cam.EncodersRunning(); got != 1 {
		t.Errorf("the H.264 encoder is not running for alice (%d)", got)
	}
	if !logHas(dev.logs.String(), `msg="vp8 encoder stopped"`) {
		t.Error("the door does not log the VP8 encoder stopping")
	}
	alice.do(ctx, calling.Hangup{})
	dev.wait(ctx, mark, "call end", isCallEnd)
}

// TestRefusedVideoPreviewThenAnswer: a softphone that takes neither of the
// door's video codecs (here: the door offers H.264 only, the softphone
// takes VP8 only) refuses the video section. It previews the ringing door
// with sound only, answers, and the call is made on the same connection:
// the door's renegotiation after the refused section works, and audio goes
// both ways.
func TestRefusedVideoPreviewThenAnswer(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 160, height: 120, fps: 10,
		cfg: media.Config{VideoCodecs: []string{media.CodecH264}}})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, cfg: vp8Only})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	dev.call(ctx, calling.Video, "alice")
	soft.wait(ctx, 0, "the invitation", isInvited)
	soft.do(ctx, calling.Preview{})
	checkTone(t, "alice (previewing)", "door", soft.hear(ctx, "door"), 440)
	dev.waitLog(ctx, "takes neither H.264 nor VP8", "user=alice")

	soft.do(ctx, calling.Accept{})
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	soft.wait(ctx, 0, "door entering", isEnter("door"))
	checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
	checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
	if n, _, _ := soft.vp8Frames("door"); n != 0 {
		t.Errorf("alice received %d VP8 frames from a door that sends none", n)
	}
	log := dev.logs.String()
	for _, bad := range []string{`msg="create offer"`, `msg="apply answer"`} {
		if strings.Contains(log, bad) {
			t.Errorf("the door logged %s", bad)
		}
	}
	if n := strings.Count(log, `msg="peer connected"`); n != 1 {
		t.Errorf("the door connected %d times, want 1 (the preview's connection kept)", n)
	}
	if s := dev.cam.VP8().EncodersStarted(); s != 0 {
		t.Errorf("%d VP8 encoders started for a party that takes no video", s)
	}
	soft.do(ctx, calling.Hangup{})
	dev.wait(ctx, 0, "call end", isCallEnd)
}

// TestVP8ViewerOutsideCalls: a viewer (NewViewer, as WHEP makes them) whose offer
// takes VP8 and not H.264 gets the camera's VP8 track, key frame first; the
// VP8 encoder stops when it closes.
func TestVP8ViewerOutsideCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cam, err := camera.New(camera.Config{
		Sources:  []camera.Source{{Device: camera.TestPatternDevice, Width: 160, Height: 120, FrameRate: 15}},
		StartOff: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	m, err := media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Camera: cam, Post: func(calling.Input) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := m.NewViewer(media.ViewerOptions{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// The viewer's side: pion taking VP8 only, receive-only.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(camera.VP8Parameters(96), webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	pc, err := wheptest.NewPeerConnectionWith(webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(wheptest.LoopbackSettings())), wheptest.Options{Video: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	keyFrame := make(chan string, 1)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			var vp8 codecs.VP8Packet
			if payload, err := vp8.Unmarshal(pkt.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 && camera.IsVP8KeyFrame(payload) {
				select {
				case keyFrame <- tr.Codec().MimeType:
				default:
				}
			}
		}
	})
	offer, err := wheptest.CompleteOffer(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := v.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case mime := <-keyFrame:
		if !strings.EqualFold(mime, webrtc.MimeTypeVP8) {
			t.Errorf("the viewer receives %s", mime)
		}
	case <-ctx.Done():
		t.Fatal("no VP8 key frame at the viewer")
	}
	if video, _ := v.Sends(); !video || cam.VP8().EncodersRunning() != 1 || cam.EncodersRunning() != 1 {
		t.Errorf("video %v, %d VP8 and %d H.264 encoders running; want true, 1, 1", video, cam.VP8().EncodersRunning(), cam.EncodersRunning())
	}
	v.Close()
	until(ctx, t, "the VP8 encoder stopping", func() bool { return cam.VP8().EncodersRunning() == 0 && cam.VP8().Users() == 0 })
}
