package camera

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The encoded stream decodes with a real decoder at the configured size, the bar code
// survives the encoder, and frames come at the configured rate.
func TestPatternEncodesAndDecodes(t *testing.T) {
	ffmpeg, ffprobe := requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const fps, seconds = 30, 3
	var sink *bindSink
	startPipeline(ctx, t, Config{Sources: []Source{patternSourceConfig("pattern", 7)}}, func(p *Pipeline) {
		sink = newBindSink(t, p, "file")
	})
	frames := collect(ctx, t, sink.assembler, fps*seconds+1)
	if !frames[0].key() {
		t.Fatalf("first frame is not a key frame: NAL types %v", nalTypes(frames[0].data))
	}
	if got := nalTypes(frames[0].data); !slices.Contains(got, 7) || !slices.Contains(got, 8) {
		t.Errorf("first frame lacks SPS/PPS: NAL types %v", got)
	}

	path := writeH264(t, frames)
	w, h, profile := probeSize(ctx, t, ffprobe, path)
	if w != 640 || h != 480 {
		t.Errorf("ffprobe size = %dx%d, want 640x480", w, h)
	}
	if profile != "Constrained Baseline" {
		t.Errorf("ffprobe profile = %q, want Constrained Baseline", profile)
	}
	imgs := decodeGray(ctx, t, ffmpeg, path, 640, 480)
	if len(imgs) != len(frames) {
		t.Fatalf("ffmpeg decoded %d frames, %d were sent", len(imgs), len(frames))
	}

	var stamps []PatternStamp
	for i, img := range imgs {
		s, ok := DecodePattern(img)
		if !ok {
			t.Errorf("frame %d: bar code unreadable after encoding", i)
			continue
		}
		if s.Seed != 7 {
			t.Errorf("frame %d: seed %d, want 7", i, s.Seed)
		}
		if n := len(stamps); n > 0 && s.Frame <= stamps[n-1].Frame {
			t.Errorf("frame %d: counter %d after %d", i, s.Frame, stamps[n-1].Frame)
		}
		stamps = append(stamps, s)
	}
	if len(stamps) < 2 {
		t.Fatal("too few readable frames")
	}
	// The frame rate is measured on the capture times stamped in the pictures, by the
	// median interval, which stays true when a loaded machine stalls the process now
	// and then; the mean is logged.
	first, last := stamps[0], stamps[len(stamps)-1]
	span := last.Time.Sub(first.Time)
	var intervals []time.Duration
	for i := 1; i < len(stamps); i++ {
		intervals = append(intervals, stamps[i].Time.Sub(stamps[i-1].Time))
	}
	slices.Sort(intervals)
	rate := float64(time.Second) / float64(intervals[len(intervals)/2])
	if rate < fps*0.8 || rate > fps*1.2 {
		t.Errorf("frame rate %.1f fps (median interval %s), want %d ±20%%", rate, intervals[len(intervals)/2], fps)
	}
	if dropped := int(last.Frame-first.Frame) + 1 - len(stamps); dropped > len(stamps)/10 {
		t.Errorf("%d of %d captured frames never reached the track", dropped, int(last.Frame-first.Frame)+1)
	}
	var lat []time.Duration
	for i, s := range stamps {
		lat = append(lat, frames[i].at.Sub(s.Time))
	}
	slices.Sort(lat)
	t.Logf("%d frames; %.2f fps by median interval, %.2f fps mean over %s; capture-to-packet latency median %s, max %s",
		len(stamps), rate, float64(len(stamps)-1)/span.Seconds(), span, lat[len(lat)/2], lat[len(lat)-1])
}

// keyFrameWithin returns how many frames of sink came before a key frame,
// failing t when none comes within n frames of what asked for one.
func keyFrameWithin(ctx context.Context, t *testing.T, sink *bindSink, n int, what string) int {
	t.Helper()
	for i := range n {
		if sink.next(ctx, t).key() {
			return i
		}
	}
	t.Fatalf("no key frame within %d frames of %s", n, what)
	return -1
}

// A forced key frame arrives within a few frames; repeated requests are coalesced.
func TestForceKeyFrame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{
		Sources: []Source{patternSourceConfig("pattern", 1)},
		Encoder: Encoder{KeyFrameInterval: 100000, MinKeyFrameGap: 500 * time.Millisecond},
	}
	var sink *bindSink
	p := startPipeline(ctx, t, cfg, func(p *Pipeline) { sink = newBindSink(t, p, "kf") })

	first := sink.next(ctx, t)
	if !first.key() {
		t.Fatal("first frame is not a key frame")
	}
	// Past the gap after the initial key frame, a request is served at once.
	for f := first; f.at.Sub(first.at) < 600*time.Millisecond; {
		f = sink.next(ctx, t)
		if f.key() {
			t.Fatal("unrequested key frame with a key frame interval of 100000")
		}
	}
	sink.drain()
	p.ForceKeyFrame()
	got := keyFrameWithin(ctx, t, sink, 5, "ForceKeyFrame")
	t.Logf("key frame %d frames after the request", got)

	// A request before every frame for 2 s: at most one key frame per gap.
	var keys int
	start := time.Now()
	var end time.Time
	for time.Since(start) < 2*time.Second {
		p.ForceKeyFrame()
		f := sink.next(ctx, t)
		if f.key() {
			keys++
		}
		end = f.at
	}
	maxKeys := int(end.Sub(start)/(500*time.Millisecond)) + 1
	if keys < 2 || keys > maxKeys {
		t.Errorf("%d key frames in %s of continuous requests, want 2..%d", keys, end.Sub(start), maxKeys)
	}
	st := p.Status()
	if st.KeyFrameRequests <= st.ForcedKeyFrames {
		t.Errorf("requests %d, forced %d: requests were not coalesced", st.KeyFrameRequests, st.ForcedKeyFrames)
	}
	t.Logf("%d key frames in %s; %d requests, %d forced", keys, end.Sub(start), st.KeyFrameRequests, st.ForcedKeyFrames)
}

// A viewer joining gets a key frame at once, even within MinKeyFrameGap of the
// encoder's first key frame (which it could not decrypt); PLIs stay rate-limited.
func TestViewerJoinedIsNotRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{
		Sources: []Source{patternSourceConfig("pattern", 1)},
		Encoder: Encoder{KeyFrameInterval: 100000, MinKeyFrameGap: time.Hour},
	}
	var sink *bindSink
	p := startPipeline(ctx, t, cfg, func(p *Pipeline) { sink = newBindSink(t, p, "viewer") })
	if !sink.next(ctx, t).key() {
		t.Fatal("first frame is not a key frame")
	}
	p.ForceKeyFrame() // held back by the gap
	for range 3 {
		if sink.next(ctx, t).key() {
			t.Fatal("ForceKeyFrame served within MinKeyFrameGap")
		}
	}
	p.ViewerJoined()
	keyFrameWithin(ctx, t, sink, 5, "ViewerJoined")
	// The held-back request was served by that key frame.
	for range 3 {
		if sink.next(ctx, t).key() {
			t.Fatal("a second key frame followed the viewer's")
		}
	}
	if st := p.Status(); st.ForcedKeyFrames != 1 {
		t.Errorf("ForcedKeyFrames = %d, want 1", st.ForcedKeyFrames)
	}
}

// Switching sources keeps the track and one encoder, and the new source's frames flow,
// starting with a key frame.
func TestSwitchSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{Sources: []Source{patternSourceConfig("a", 1), patternSourceConfig("b", 2)}}
	var sink *bindSink
	p := startPipeline(ctx, t, cfg, func(p *Pipeline) { sink = newBindSink(t, p, "switch") })
	track := p.Track()
	before := collect(ctx, t, sink.assembler, 10)

	if err := p.Switch(ctx, "b"); err != nil {
		t.Fatalf("Switch: %v", err)
	}
	if p.Track() != track {
		t.Error("Switch replaced the track")
	}
	if n := p.EncodersRunning(); n != 1 {
		t.Errorf("EncodersRunning = %d after Switch, want 1", n)
	}
	if n := p.EncodersStarted(); n != 2 {
		t.Errorf("EncodersStarted = %d after one Switch, want 2", n)
	}
	if n := p.encPeak.Load(); n != 1 {
		t.Errorf("%d encoders ran at once, want 1", n)
	}
	// The old source's encoder was closed before Switch returned: what remains queued
	// came from it; the first frame of b is a key frame.
	sink.drain()
	after := collect(ctx, t, sink.assembler, 10)
	if !after[0].key() {
		t.Errorf("first frame after the switch is not a key frame: NAL types %v", nalTypes(after[0].data))
	}
	if st := p.Status(); st.Source != "b" || !st.Capturing || st.Err != nil {
		t.Errorf("Status = %+v, want source b capturing", st)
	}
	if err := p.Switch(ctx, "nope"); !errors.Is(err, ErrUnknownSource) {
		t.Errorf("Switch to an unknown source: %v, want ErrUnknownSource", err)
	}

	// With a real decoder, the pictures are those of b (seed 2).
	ffmpeg, _ := requireFFmpeg(t)
	seeds := func(frames []frame) []uint16 {
		var out []uint16
		for _, img := range decodeGray(ctx, t, ffmpeg, writeH264(t, frames), 640, 480) {
			s, ok := DecodePattern(img)
			if !ok {
				t.Fatal("bar code unreadable")
			}
			out = append(out, s.Seed)
		}
		return out
	}
	if got := seeds(after); slices.ContainsFunc(got, func(s uint16) bool { return s != 2 }) || len(got) != len(after) {
		t.Errorf("seeds after the switch = %v, want all 2", got)
	}
	if got := seeds(before); len(got) == 0 || got[0] != 1 {
		t.Errorf("seeds before the switch = %v, want 1", got)
	}
}

// Off stops the encoder and the samples; on resumes with a key frame.
func TestEnableDisable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sink *bindSink
	p := startPipeline(ctx, t, Config{Sources: []Source{patternSourceConfig("p", 0)}}, func(p *Pipeline) {
		sink = newBindSink(t, p, "onoff")
	})
	collect(ctx, t, sink.assembler, 5)
	if err := p.SetEnabled(ctx, false); err != nil {
		t.Fatalf("SetEnabled(false): %v", err)
	}
	if n := p.EncodersRunning(); n != 0 {
		t.Errorf("EncodersRunning = %d while off, want 0", n)
	}
	frames := p.Status().Frames
	sink.drain()
	// The encode goroutine has been joined: no sample can follow. Switching while off
	// only selects.
	if err := p.Switch(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Frames != frames || st.Capturing || st.Enabled {
		t.Errorf("while off: %+v, want no new frames, not capturing, disabled", st)
	}
	if n := sink.drain(); n != 0 {
		t.Errorf("%d frames arrived while off", n)
	}
	if err := p.SetEnabled(ctx, true); err != nil {
		t.Fatalf("SetEnabled(true): %v", err)
	}
	if f := sink.next(ctx, t); !f.key() {
		t.Error("first frame after switching on is not a key frame")
	}
	if n, s := p.EncodersRunning(), p.EncodersStarted(); n != 1 || s != 2 {
		t.Errorf("EncodersRunning, EncodersStarted = %d, %d, want 1, 2", n, s)
	}
}

// With StartOff nothing is captured or encoded until SetEnabled(true), which starts
// with a key frame; a missing camera is still reported by Start.
func TestStartOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sink *bindSink
	p := startPipeline(ctx, t, Config{Sources: []Source{patternSourceConfig("p", 0)}, StartOff: true}, func(p *Pipeline) {
		sink = newBindSink(t, p, "off")
	})
	if st := p.Status(); st.Enabled || st.Capturing || st.Err != nil || st.EncodersStarted != 0 || st.EncodersRunning != 0 {
		t.Fatalf("after Start with StartOff: %+v, want off, no encoder ever started", st)
	}
	if err := p.SetEnabled(ctx, true); err != nil {
		t.Fatalf("SetEnabled(true): %v", err)
	}
	if f := sink.next(ctx, t); !f.key() {
		t.Error("first frame after switching on is not a key frame")
	}
	if n, s := p.EncodersRunning(), p.EncodersStarted(); n != 1 || s != 1 {
		t.Errorf("EncodersRunning, EncodersStarted = %d, %d, want 1, 1", n, s)
	}
	if err := p.SetEnabled(ctx, false); err != nil {
		t.Fatalf("SetEnabled(false): %v", err)
	}
	if n := p.EncodersRunning(); n != 0 {
		t.Errorf("EncodersRunning = %d after switching off, want 0", n)
	}

	const dev = "/dev/video-intercomd-missing"
	p2, err := New(Config{Sources: []Source{{Name: "door", Device: dev}}, StartOff: true, RetryInterval: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.Start(ctx); !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), dev) {
		t.Fatalf("Start with StartOff and a missing camera: %v, want ErrNoDevice naming %s", err, dev)
	}
	if st := p2.Status(); st.Enabled || !errors.Is(st.Err, ErrNoDevice) || st.EncodersStarted != 0 {
		t.Errorf("Status = %+v, want off with ErrNoDevice and no encoder", st)
	}
}

// A missing camera fails Start with an error naming it; the pipeline can fall back to
// the test pattern without a new track.
func TestMissingCameraFallsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const dev = "/dev/video-intercomd-missing"
	p, err := New(Config{
		Sources:       []Source{{Name: "door", Device: dev}, patternSourceConfig("pattern", 3)},
		RetryInterval: 50 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Close()
		checkNoPipelineGoroutines(t)
	})
	sink := newBindSink(t, p, "fallback")
	err = p.Start(ctx)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), dev) {
		t.Fatalf("Start with a missing camera: %v, want ErrNoDevice naming %s", err, dev)
	}
	if st := p.Status(); st.Capturing || !errors.Is(st.Err, ErrNoDevice) || st.EncodersRunning != 0 {
		t.Errorf("Status = %+v, want not capturing with ErrNoDevice", st)
	}
	if err := p.Switch(ctx, "pattern"); err != nil {
		t.Fatalf("Switch to the pattern: %v", err)
	}
	if f := sink.next(ctx, t); !f.key() {
		t.Error("first frame of the fallback is not a key frame")
	}
	if st := p.Status(); !st.Capturing || st.Err != nil || st.Source != "pattern" {
		t.Errorf("Status = %+v, want the pattern capturing", st)
	}

	// By name too.
	p2, err := New(Config{Sources: []Source{{Device: "No Such Camera"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p2.Start(ctx)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "No Such Camera") {
		t.Errorf("Start with an unknown camera name: %v", err)
	}
	if err := p2.Close(); err != nil {
		t.Error(err)
	}
}

func TestMethodsBeforeStartAndAfterClose(t *testing.T) {
	ctx := context.Background()
	p, err := New(Config{Sources: []Source{patternSourceConfig("p", 0)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Switch(ctx, "p"); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Switch before Start: %v, want ErrNotStarted", err)
	}
	p.ForceKeyFrame() // must not block or panic
	if err := p.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.SetEnabled(ctx, false); !errors.Is(err, ErrClosed) {
		t.Errorf("SetEnabled after Close: %v, want ErrClosed", err)
	}
	checkNoPipelineGoroutines(t)
}

func TestConfigValidate(t *testing.T) {
	ok := Source{Device: TestPatternDevice}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; empty for valid
	}{
		{"defaults", Config{Sources: []Source{ok}}, ""},
		{"no sources", Config{}, "sources"},
		{"no device", Config{Sources: []Source{{Name: "x"}}}, "sources[0].device"},
		{"odd size", Config{Sources: []Source{{Device: "/dev/video0", Width: 641, Height: 480}}}, "even"},
		{"duplicate", Config{Sources: []Source{ok, ok}}, "sources[1].name"},
		{"format", Config{Sources: []Source{{Device: "/dev/video0", PixelFormat: "H265"}}}, "pixel_format"},
		{"rate", Config{Sources: []Source{{Device: "/dev/video0", FrameRate: -1}}}, "frame_rate"},
		{"bitrate", Config{Sources: []Source{ok}, Encoder: Encoder{BitRate: 5}}, "encoder.bit_rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error about %s", err, tc.want)
			}
		})
	}
	if _, err := New(Config{Sources: []Source{{Device: TestPatternDevice, Width: 64, Height: 48}}}, nil); err != nil {
		t.Fatal(err) // a valid config; the pattern's own size check happens at open
	}
}
