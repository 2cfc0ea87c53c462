package camera

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// waitUntil waits for cond, failing the test with what at ctx's end.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The VP8 encoder runs only while held, one at most whatever the number of
// holders, beside the H.264 one; it starts with a key frame, stops with the
// camera and comes back with it, and stops when the last holder lets go.
func TestVP8StartsWhileHeld(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := patternSourceConfig("p", 0)
	src.Width, src.Height = 320, 240
	p := startPipeline(ctx, t, Config{Sources: []Source{src}}, nil)
	v := p.VP8()
	waitUntil(ctx, t, "H.264 frames", func() bool { return p.Status().Frames >= 5 })
	if v.EncodersStarted() != 0 {
		t.Fatal("the VP8 encoder started with nobody holding it")
	}
	a, b := v.Acquire(), v.Acquire()
	waitUntil(ctx, t, "VP8 frames", func() bool { n, _ := v.Frames(); return n >= 10 })
	if _, keys := v.Frames(); keys == 0 {
		t.Error("no VP8 key frame")
	}
	if v.EncodersRunning() != 1 || v.EncodersStarted() != 1 || p.EncodersRunning() != 1 {
		t.Errorf("VP8 encoders %d running, %d started; H.264 %d: want 1, 1, 1", v.EncodersRunning(), v.EncodersStarted(), p.EncodersRunning())
	}

	if err := p.SetEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	if v.EncodersRunning() != 0 {
		t.Error("the VP8 encoder runs with the camera off")
	}
	if err := p.SetEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	n, _ := v.Frames()
	waitUntil(ctx, t, "VP8 frames after the camera came back", func() bool { m, _ := v.Frames(); return m >= n+5 })

	a()
	a() // a second release of one hold does nothing
	if v.Users() != 1 {
		t.Errorf("%d holders after one of two let go, want 1", v.Users())
	}
	b()
	waitUntil(ctx, t, "the VP8 encoder stopping", func() bool { return v.EncodersRunning() == 0 })
	h := p.Status().Frames
	waitUntil(ctx, t, "H.264 frames going on", func() bool { return p.Status().Frames >= h+5 })
	if v.EncodersStarted() != 2 {
		t.Errorf("%d VP8 encoders started (once, then again after the camera was off), want 2", v.EncodersStarted())
	}
}

// A source that passes H.264 through has no raw frames: its VP8 holders get
// nothing, and the log says so once.
func TestVP8PassThroughHasNoPicture(t *testing.T) {
	ffmpeg, _ := requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &syncLog{}
	src := Source{Name: "pi", Device: "rpicam", Width: 640, Height: 480, Command: ffmpegAsRpicam(ffmpeg, 0)}
	p, err := New(Config{Sources: []Source{src}}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	release := p.VP8().Acquire()
	defer release()
	waitUntil(ctx, t, "the log line", func() bool { return logs.count("vp8 viewers get no picture") > 0 })
	h := p.Status().Frames
	waitUntil(ctx, t, "H.264 frames going on", func() bool { return p.Status().Frames >= h+10 })
	if n, _ := p.VP8().Frames(); n != 0 || p.VP8().EncodersStarted() != 0 {
		t.Errorf("%d VP8 frames, %d encoders from a pass-through source", n, p.VP8().EncodersStarted())
	}
	if c := logs.count("vp8 viewers get no picture"); c != 1 {
		t.Errorf("logged %d times, want once", c)
	}
}
