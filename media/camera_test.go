package media_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/media"
)

// slowCamera is a camera whose switching on takes until release is closed.
type slowCamera struct {
	track   *webrtc.TrackLocalStaticSample
	release chan struct{}
	mu      sync.Mutex
	calls   []bool
}

func (c *slowCamera) Track() *webrtc.TrackLocalStaticSample { return c.track }
func (c *slowCamera) HandleRTCP(camera.RTCPReader) <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
func (c *slowCamera) ViewerJoined()                        {}
func (c *slowCamera) Switch(context.Context, string) error { return nil }
func (c *slowCamera) EncodersRunning() int                 { return 0 }
func (c *slowCamera) VP8() *camera.VP8                     { return nil }
func (c *slowCamera) SetEnabled(ctx context.Context, on bool) error {
	c.mu.Lock()
	c.calls = append(c.calls, on)
	c.mu.Unlock()
	if on {
		select {
		case <-c.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *slowCamera) switched() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.calls...)
}

// A camera that is slow to start must not hold up the media loop: the call
// joins and later requests are served while the camera is still starting,
// and the camera goes off when the call leaves, once it has started.
func TestSlowCameraDoesNotStallTheLoop(t *testing.T) {
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	cam := &slowCamera{track: track, release: make(chan struct{})}
	in := make(chan calling.Input, 64)
	m, err := media.New(media.Options{Config: media.Config{LoopbackOnly: true}, Camera: cam, Post: func(i calling.Input) { in <- i }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	joined := func(what string) {
		t.Helper()
		select {
		case got := <-in:
			if j, ok := got.(calling.MediaJoined); !ok || j.Err != nil {
				t.Fatalf("%s: got %#v, want MediaJoined", what, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the media loop did not answer while the camera was starting", what)
		}
	}
	m.Do(calling.JoinMedia{Call: "c1", Type: calling.Video, Hub: "door", IsHub: true})
	joined("join")
	m.Do(calling.JoinMedia{Call: "c1", Type: calling.Video, Hub: "door", IsHub: true})
	joined("join again")
	m.Do(calling.LeaveMedia{Call: "c1"})
	m.Do(calling.JoinMedia{Call: "c2", Type: calling.Video, Hub: "door", IsHub: true})
	joined("join a second call")
	m.Do(calling.LeaveMedia{Call: "c2"})
	close(cam.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := cam.switched()
		if len(got) == 2 && got[0] && !got[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera switched %v, want on then off", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
