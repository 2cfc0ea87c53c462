package cameratest_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/hw/camera/cameratest"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// packetQueue binds a track in process and hands its packets to ReadFrames, standing in
// for a PeerConnection's TrackRemote.
type packetQueue struct{ c chan *rtp.Packet }

func (q *packetQueue) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{camera.CodecParameters(102)}
}
func (q *packetQueue) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (q *packetQueue) SSRC() webrtc.SSRC                                      { return 1 }
func (q *packetQueue) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (q *packetQueue) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (q *packetQueue) WriteStream() webrtc.TrackLocalWriter                   { return q }
func (q *packetQueue) ID() string                                             { return "q" }
func (q *packetQueue) RTCPReader() interceptor.RTCPReader                     { return nil }
func (q *packetQueue) Write(b []byte) (int, error)                            { return len(b), nil }

func (q *packetQueue) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	q.c <- &rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), payload...)}
	return len(payload), nil
}

func (q *packetQueue) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	return <-q.c, nil, nil
}

// Frames from the pipeline's track reassemble, decode and carry their capture times.
func TestReadDecodePattern(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("SKIPPING: ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := camera.New(camera.Config{Sources: []camera.Source{{Device: camera.TestPatternDevice, PatternSeed: 9}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := &packetQueue{c: make(chan *rtp.Packet, 10000)}
	if _, err := p.Track().Bind(q); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	frames, err := cameratest.ReadFrames(q, 30)
	if cerr := p.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !frames[0].KeyFrame() || frames[1].KeyFrame() {
		t.Errorf("key frames: first %v, second %v; want true, false", frames[0].KeyFrame(), frames[1].KeyFrame())
	}
	if d := frames[1].Timestamp - frames[0].Timestamp; d < 1500 || d > 6000 {
		t.Errorf("RTP timestamp step %d, want about 3000 (90 kHz at 30 fps)", d)
	}
	imgs, err := cameratest.DecodeGray(ctx, frames, 640, 480)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != len(frames) {
		t.Fatalf("decoded %d pictures from %d frames", len(imgs), len(frames))
	}
	var prev camera.PatternStamp
	for i, img := range imgs {
		s, ok := camera.DecodePattern(img)
		if !ok || s.Seed != 9 || (i > 0 && s.Frame <= prev.Frame) {
			t.Fatalf("picture %d: stamp %+v, %v after %+v; want seed 9, counting up", i, s, ok, prev)
		}
		prev = s
		if lat := frames[i].Arrived.Sub(s.Time); lat < 0 || lat > 10*time.Second {
			t.Errorf("picture %d: capture-to-arrival %s", i, lat)
		}
	}
}
