package voicemsg_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/push/pushtest"
	"github.com/intercomd/intercomd/voicemsg"
)

// engine starts an audio engine on the null device (real time, no sound
// card) with src as its microphone and rec recording its speaker.
func engine(t *testing.T, src audio.Source, rec *audiotest.Recorder) *audio.Engine {
	t.Helper()
	cfg := audio.Config{Backend: audio.BackendNull, Source: src}
	if rec != nil {
		cfg.Sink = rec
	}
	e, err := audio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		e.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// decoded is a message as ffprobe and ffmpeg read it.
type decoded struct {
	codec    string
	channels int
	rate     int
	duration float64 // seconds, from the container
	audiotest.Decoded
}

// decode checks ogg with ffprobe and decodes it with ffmpeg.
func decode(t *testing.T, ogg []byte) decoded {
	t.Helper()
	ffprobe, err1 := exec.LookPath("ffprobe")
	ffmpeg, err2 := exec.LookPath("ffmpeg")
	if err1 != nil || err2 != nil {
		pushtest.Missing(t, "ffmpeg and ffprobe (Debian package ffmpeg)")
	}
	f := filepath.Join(t.TempDir(), "message.ogg")
	if err := os.WriteFile(f, ogg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name,channels,sample_rate", "-of", "json", f).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Channels   int    `json:"channels"`
			SampleRate string `json:"sample_rate"`
		}
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string
		}
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 || probe.Format.FormatName != "ogg" {
		t.Fatalf("ffprobe: %s %v", out, err)
	}
	var d decoded
	d.codec, d.channels = probe.Streams[0].CodecName, probe.Streams[0].Channels
	d.rate, _ = strconv.Atoi(probe.Streams[0].SampleRate)
	d.duration, _ = strconv.ParseFloat(probe.Format.Duration, 64)
	if d.Decoded, err = audiotest.FFmpegDecode(t.Context(), ffmpeg, t.TempDir(), ogg); err != nil {
		t.Fatal(err)
	}
	return d
}

// A recording plays the greeting, then records the microphone for at most
// MaxDuration into Ogg Opus that ffmpeg decodes to the microphone's tone.
func TestRecordBoundedByMaxDuration(t *testing.T) {
	ctx := testCtx(t)
	speaker := audiotest.NewRecorder(audio.SampleRate * 10)
	e := engine(t, &audiotest.Tone{Freq: 440, Amp: 0.3}, speaker)
	greeting := audiotest.Sine(700, 0.3, audio.SampleRate, audio.SampleRate/2)
	start := time.Now()
	m, err := voicemsg.Record(ctx, e, voicemsg.Config{Greeting: greeting, MaxDuration: time.Second, Silence: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("the greeting and a second of message took %v: not real time", took)
	}
	if m.Duration != time.Second {
		t.Errorf("message of %v, want the 1 s bound", m.Duration)
	}
	if f := audiotest.DominantFrequency(speaker.Samples(), audio.SampleRate); math.Abs(f-700) > 5 {
		t.Errorf("the speaker played %.1f Hz, want the greeting's 700 Hz", f)
	}
	d := decode(t, m.Ogg)
	if d.codec != "opus" || d.channels != 1 || d.rate != 48000 || d.Complaints != "" {
		t.Fatalf("ffmpeg reads %+v, says %q; want mono Opus at 48 kHz, no complaint", d, d.Complaints)
	}
	if math.Abs(d.duration-1) > 0.05 || math.Abs(float64(len(d.PCM))/48000-1) > 0.05 {
		t.Errorf("ffmpeg: %.3f s in the container, %d samples decoded; want 1 s", d.duration, len(d.PCM))
	}
	if f := audiotest.DominantFrequency(d.PCM[4800:], audio.SampleRate); math.Abs(f-440) > 5 {
		t.Errorf("the message decodes to %.1f Hz, want the microphone's 440 Hz", f)
	}
	t.Logf("a message of %v: %d bytes of Ogg Opus", m.Duration, len(m.Ogg))
	if len(m.Ogg) > 2600 {
		t.Errorf("a second of message takes %d bytes: want at most 2600 (16 kbit/s and the pages)", len(m.Ogg))
	}
}

// switchable is a microphone that plays a tone, falling silent after
// silentAfter frames when that is set.
type switchable struct {
	tone        audiotest.Tone
	silentAfter atomic.Int64
	frames      atomic.Int64
}

func (s *switchable) Read(p []int16) {
	n := s.frames.Add(1)
	if after := s.silentAfter.Load(); after > 0 && n > after {
		clear(p)
		return
	}
	s.tone.Read(p)
}

// Stopping the recording (a new ring) ends it at once and keeps what was
// recorded.
func TestRecordStopsOnANewRing(t *testing.T) {
	ctx := testCtx(t)
	mic := &switchable{tone: audiotest.Tone{Freq: 440, Amp: 0.3}}
	e := engine(t, mic, nil)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var m voicemsg.Message
	go func() {
		var err error
		m, err = voicemsg.Record(rctx, e, voicemsg.Config{Greeting: make([]int16, audio.FrameSamples), MaxDuration: 20 * time.Second})
		done <- err
	}()
	// Half a second into the message (the engine's frames count the time).
	for at := mic.frames.Load(); mic.frames.Load() < at+40; {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Record went on after its context ended")
	}
	if m.Duration < 200*time.Millisecond || m.Duration > 5*time.Second {
		t.Errorf("stopped after about half a second: a message of %v", m.Duration)
	}
	if d := decode(t, m.Ogg); math.Abs(float64(len(d.PCM))/48000-m.Duration.Seconds()) > 0.05 {
		t.Errorf("decoded %d samples of a %v message", len(d.PCM), m.Duration)
	}

	// Stopped during the greeting: no message.
	rctx, stop = context.WithCancel(ctx)
	go func() {
		_, err := voicemsg.Record(rctx, e, voicemsg.Config{Greeting: make([]int16, 10*audio.SampleRate), MaxDuration: time.Second})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // either way the greeting is under way or not begun
	stop()
	if err := <-done; !errors.Is(err, voicemsg.ErrStopped) {
		t.Errorf("stopped during the greeting: %v, want ErrStopped", err)
	}
}

// Silence ends the recording: after the visitor's last sound (a message
// keeps half a second of it), or from the start (nothing to keep).
func TestRecordStopsOnSilence(t *testing.T) {
	ctx := testCtx(t)
	mic := &switchable{tone: audiotest.Tone{Freq: 440, Amp: 0.3}}
	e := engine(t, mic, nil)
	mic.silentAfter.Store(mic.frames.Load() + 100) // the greeting and about 2 s
	m, err := voicemsg.Record(ctx, e, voicemsg.Config{Greeting: make([]int16, audio.FrameSamples), MaxDuration: 20 * time.Second, Silence: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped by silence: a message of %v", m.Duration)
	if m.Duration < 700*time.Millisecond || m.Duration > 3*time.Second {
		t.Errorf("a message of %v: want about 2 s of sound and half a second of the silence after it", m.Duration)
	}

	_, err = voicemsg.Record(ctx, e, voicemsg.Config{Greeting: make([]int16, audio.FrameSamples), MaxDuration: 20 * time.Second, Silence: time.Second})
	if !errors.Is(err, voicemsg.ErrSilent) {
		t.Errorf("nothing but silence: %v, want ErrSilent", err)
	}
}

// deaf is an audio device whose microphone never delivers a frame.
type deaf struct{}

func (deaf) Play(context.Context, []int16) error { return nil }
func (deaf) OnCapture(func([]int16))             {}

func TestRecordFailingMicrophone(t *testing.T) {
	_, err := voicemsg.Record(testCtx(t), deaf{}, voicemsg.Config{MaxDuration: 20 * time.Second, MicTimeout: 300 * time.Millisecond})
	if !errors.Is(err, voicemsg.ErrNoAudio) {
		t.Fatalf("a microphone that delivers nothing: %v, want ErrNoAudio", err)
	}
}
