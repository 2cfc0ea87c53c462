package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/transport/v5"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
)

const testTimeout = 90 * time.Second

// partyOpts describe one side of a call in a test.
type partyOpts struct {
	tone   float64 // microphone tone, Hz
	camera bool    // a test pattern camera
	width  int
	height int
	fps    float64
	// keyFrameInterval of the camera's encoder (frames); 0 is its default.
	keyFrameInterval int
	autoAnswer       bool
	noAudio          bool
	// engine uses the device's audio engine (hw/audio) on the null backend
	// with a tone microphone; what it plays is recorded as party "mix".
	engine bool
	cfg    media.Config
	net    transport.Net
	// onEffect sees every effect of the party's calling agent.
	onEffect func(calling.Effect)
	// session is the login session (a device of the user); "" is a
	// random one.
	session string
	// rejoinGrace is the calling core's RejoinGrace (as a hub).
	rejoinGrace time.Duration
}

// party is a calling endpoint with real media: SoftAudio with a tone
// microphone, an optional test pattern camera, recorders of what it hears
// and sees.
type party struct {
	t     testing.TB
	user  string
	ep    *endpoint.Endpoint
	media *media.Media
	audio *media.SoftAudio
	cam   *camera.Pipeline
	logs  *lockedBuffer

	mu     sync.Mutex
	recs   map[string]*audiotest.Recorder
	video  map[string]*videoSink
	vp8    map[string]*videoSink // VP8 frames, by sender
	events []calling.Event
	notify chan struct{}
}

type videoSink struct {
	frames, keys int
	first, last  time.Time
	data         bytes.Buffer
	times        []time.Time
	isKey        []bool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newParty(t testing.TB, env *mqtttest.Env, user string, o partyOpts) *party {
	t.Helper()
	p := &party{t: t, user: user, recs: map[string]*audiotest.Recorder{}, video: map[string]*videoSink{}, vp8: map[string]*videoSink{}, notify: make(chan struct{}, 1)}
	lb := &lockedBuffer{}
	p.logs = lb
	level := slog.LevelInfo
	if os.Getenv("MEDIA_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: level})).With("party", user)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MEDIA_DEBUG") != "" {
			t.Logf("log of %s:\n%s", user, lb.String())
		}
	})
	var engineAudio media.Audio
	if o.engine {
		mix := audiotest.NewRecorder(48000 * 30)
		p.recs["mix"] = mix
		e, err := audio.New(audio.Config{Backend: audio.BackendNull, Source: &audiotest.Tone{Freq: o.tone, Amp: 0.3}, Sink: mix, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		engineAudio = media.EngineAudio{Engine: e}
	} else if !o.noAudio {
		a, err := media.NewSoftAudio(media.SoftAudioConfig{MicTone: o.tone, OnParty: p.onAudio})
		if err != nil {
			t.Fatal(err)
		}
		p.audio = a
	}
	if o.camera {
		if o.width == 0 {
			o.width, o.height = 320, 240
		}
		if o.fps == 0 {
			o.fps = 15
		}
		cam, err := camera.New(camera.Config{
			Sources:  []camera.Source{{Device: camera.TestPatternDevice, Width: o.width, Height: o.height, FrameRate: o.fps}},
			Encoder:  camera.Encoder{BitRate: 500_000, KeyFrameInterval: o.keyFrameInterval},
			StartOff: true, // as in the daemon: the media layer switches it on for calls
		}, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := cam.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		p.cam = cam
	}
	cfg := o.cfg
	if o.net == nil {
		cfg.LoopbackOnly = true
	}
	mopts := media.Options{
		Config:       cfg,
		User:         user,
		Logger:       log,
		OnVideoFrame: p.onVideo,
		OnVP8Frame:   p.onVP8,
		Net:          o.net,
	}
	if p.audio != nil {
		mopts.Audio = p.audio
	}
	if engineAudio != nil {
		mopts.Audio = engineAudio
	}
	if p.cam != nil {
		mopts.Camera = p.cam
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ep, err := endpoint.Start(ctx, endpoint.Options{
		MQTT:     env.ClientOptions(user),
		Calling:  calling.Config{User: user, Session: o.session, MultiDevice: true, RejoinGrace: o.rejoinGrace},
		Logger:   log,
		OnEffect: o.onEffect,
		Media: func(post func(calling.Input)) agent.Media {
			mopts.Post = post
			m, err := media.New(mopts)
			if err != nil {
				t.Fatal(err)
			}
			p.media = m
			return m
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.ep = ep
	events, unsub := ep.Subscribe(256)
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			var ev calling.Event
			select {
			case ev = <-events:
			case <-stop:
				return
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
			if _, ok := ev.(calling.Invited); ok && o.autoAnswer {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = ep.Do(ctx, calling.Accept{})
				}()
			}
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = ep.Close(ctx)
		unsub()
		_ = p.media.Close()
		if p.audio != nil {
			_ = p.audio.Close()
		}
		if p.cam != nil {
			_ = p.cam.Close()
		}
		close(stop)
		<-done
	})
	if err := ep.Client().WaitConnected(ctx); err != nil {
		t.Fatalf("%s: signaling: %v", user, err)
	}
	return p
}

// call places a call, retrying while the login that follows the link
// coming up is still on its way.
func (p *party) call(ctx context.Context, typ calling.CallType, users ...string) {
	p.t.Helper()
	for {
		err := p.ep.Do(ctx, calling.Call{Users: users, Type: typ})
		if err == nil {
			return
		}
		if !errors.Is(err, calling.ErrNotLoggedIn) || ctx.Err() != nil {
			p.t.Fatalf("%s calls %v: %v", p.user, users, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *party) onAudio(user string, pcm []int16) {
	p.mu.Lock()
	r := p.recs[user]
	if r == nil {
		r = audiotest.NewRecorder(48000 * 30)
		p.recs[user] = r
	}
	p.mu.Unlock()
	r.Write(pcm)
}

func (p *party) recorder(user string) *audiotest.Recorder {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recs[user]
}

func (p *party) onVideo(user string, au []byte, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sinkOf(p.video, user, at).add(au, media.IsKeyFrame(au), at, nil)
}

// sinkOf returns user's sink in sinks, made on the first frame (at).
func sinkOf(sinks map[string]*videoSink, user string, at time.Time) *videoSink {
	v := sinks[user]
	if v == nil {
		v = &videoSink{first: at}
		sinks[user] = v
	}
	return v
}

// add records a frame; prefix (a container's frame header) is stored
// before its data.
func (v *videoSink) add(frame []byte, key bool, at time.Time, prefix []byte) {
	v.frames++
	if key {
		v.keys++
	}
	v.last = at
	v.times = append(v.times, at)
	v.isKey = append(v.isKey, key)
	if v.data.Len() < 64<<20 {
		v.data.Write(prefix)
		v.data.Write(frame)
	}
}

// firstFrameAfter returns the first frame received after t0 and whether it
// is a key frame.
func (p *party) firstFrameAfter(user string, t0 time.Time) (time.Time, bool, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.video[user]
	if v == nil {
		return time.Time{}, false, false
	}
	for i, at := range v.times {
		if at.After(t0) {
			return at, v.isKey[i], true
		}
	}
	return time.Time{}, false, false
}

// videoFrames returns how many frames arrived from user, and when.
func (p *party) videoFrames(user string) (int, []time.Time, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.video[user]
	if v == nil {
		return 0, nil, nil
	}
	return v.frames, append([]time.Time(nil), v.times...), bytes.Clone(v.data.Bytes())
}

// wait returns the index of the first event at or after from that pred
// accepts, failing the test at the deadline.
func (p *party) wait(ctx context.Context, from int, what string, pred func(calling.Event) bool) int {
	p.t.Helper()
	for {
		p.mu.Lock()
		evs := p.events
		p.mu.Unlock()
		for i := from; i < len(evs); i++ {
			if pred(evs[i]) {
				return i
			}
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("%s: waiting for %s: %v; events: %s", p.user, what, ctx.Err(), p.describeEvents())
		case <-p.notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *party) eventCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

func (p *party) describeEvents() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []string
	for _, e := range p.events {
		if _, ok := e.(calling.UserVoiceVolume); ok {
			continue
		}
		s = append(s, calling.DescribeEvent(e))
	}
	return strings.Join(s, "; ")
}

func isEnter(user string) func(calling.Event) bool {
	return func(e calling.Event) bool { u, ok := e.(calling.UserEnter); return ok && u.User == user }
}

func isCallEnd(e calling.Event) bool { _, ok := e.(calling.CallEnd); return ok }

// hearFrequency waits for one second of audio from user (after the jitter
// buffer filled) and returns its dominant frequency.
func (p *party) hear(ctx context.Context, user string) []int16 {
	p.t.Helper()
	for p.recorder(user) == nil {
		select {
		case <-ctx.Done():
			p.t.Fatalf("%s: no audio from %s", p.user, user)
		case <-time.After(20 * time.Millisecond):
		}
	}
	r := p.recorder(user)
	if _, err := r.Wait(ctx, 48000/2); err != nil { // settle
		p.t.Fatalf("%s: audio from %s: %v", p.user, user, err)
	}
	s, err := r.Wait(ctx, 48000)
	if err != nil {
		p.t.Fatalf("%s: audio from %s: %v", p.user, user, err)
	}
	return s
}

func checkTone(t testing.TB, who, from string, samples []int16, want float64) {
	t.Helper()
	got := audiotest.DominantFrequency(samples, 48000)
	if got < want-15 || got > want+15 {
		t.Errorf("%s hears %s at %.1f Hz, want %.0f Hz (rms %.3f)", who, from, got, want, audiotest.RMS(samples))
	}
}

// needFFmpeg returns the ffprobe path, skipping (or failing under CI) when
// the Debian package ffmpeg is missing.
func needFFmpeg(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("ffprobe")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffprobe not found: install the Debian package ffmpeg")
		}
		t.Skip("SKIPPED: ffprobe not found: install the Debian package ffmpeg to decode the received H.264")
	}
	return path
}

// probe decodes a video file (name's extension says its format: .h264 an
// Annex B stream, .ivf VP8) with ffprobe and returns the decoded frame
// count and the picture size.
func probe(t testing.TB, ffprobe string, data []byte, name string) (frames, width, height int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	parts := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(parts) != 3 {
		t.Fatalf("ffprobe output %q", out)
	}
	width, _ = strconv.Atoi(parts[0])
	height, _ = strconv.Atoi(parts[1])
	frames, _ = strconv.Atoi(parts[2])
	return frames, width, height
}

func frameRate(times []time.Time) float64 {
	if len(times) < 2 {
		return 0
	}
	return float64(len(times)-1) / times[len(times)-1].Sub(times[0]).Seconds()
}

var _ = fmt.Sprintf
