//go:build kernel

// These tests run the engine against real ALSA: the snd-aloop Loopback card,
// where what is played on hw:Loopback,0,0 is captured on hw:Loopback,1,0.
// They need the snd-aloop module and fail without it. Run them inside a
// guest with:
//
//	go test -exec "$PWD/test/vm/exec" -tags kernel -run Kernel ./hw/audio/
package audio_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
)

func loopbackConfig(t *testing.T) audio.Config {
	t.Helper()
	if _, err := os.Stat("/proc/asound/Loopback"); err != nil {
		t.Fatalf("the snd-aloop Loopback card is missing (load snd-aloop): %v", err)
	}
	return audio.Config{
		Backend:  audio.BackendALSA,
		Playback: "hw:Loopback,0,0",
		Capture:  "hw:Loopback,1,0",
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// micTap records the captured microphone frames and, on each one, pushes
// the next packet of a party's stream: the device clock paces the party.
type micTap struct {
	rec *audiotest.Recorder
	mu  sync.Mutex
	f   *feeder
}

func (m *micTap) Write(p []int16) {
	m.rec.Write(p)
	m.mu.Lock()
	f := m.f
	m.mu.Unlock()
	if f != nil {
		f.tick(audio.Frame{})
	}
}

func (m *micTap) setFeeder(f *feeder) {
	m.mu.Lock()
	m.f = f
	m.mu.Unlock()
}

// loudPart keeps the 100 ms windows of pcm whose level is at least half the
// loudest one's: the tone, without the gaps an overloaded guest causes.
func loudPart(pcm []int16) []int16 {
	const w = audio.SampleRate / 10
	best := 0.0
	for _, r := range audiotest.Envelope(pcm, w) {
		best = math.Max(best, r)
	}
	var out []int16
	for i := 0; i+w <= len(pcm); i += w {
		if audiotest.RMS(pcm[i:i+w]) >= best/2 {
			out = append(out, pcm[i:i+w]...)
		}
	}
	return out
}

// TestKernelLoopbackRoundTrip plays a party's 440 Hz Opus stream through
// the engine into the loopback card and captures it back through the same
// engine's microphone path; then does the same with the ringtone (800 Hz).
// The captured PCM is taken before the encoder (Config.CaptureSink): the
// emulated guest runs libopus' encoder slower than real time.
func TestKernelLoopbackRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := loopbackConfig(t)
	tap := &micTap{rec: audiotest.NewRecorder(audio.SampleRate * 10)}
	cfg.CaptureSink = tap
	cfg.Period = 20 * time.Millisecond  // an emulated CPU is slow
	cfg.StallTimeout = 30 * time.Second // and sometimes starved
	e, err := audio.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer e.Close()
	t.Logf("device: %+v", e.Info())
	p, err := e.AddParty("remote")
	if err != nil {
		t.Fatal(err)
	}
	tap.setFeeder(&feeder{parties: []*audio.Party{p}, packets: [][][]byte{encodeTone(t, 440, 50)}})
	if err := e.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := tap.rec.Wait(ctx, audio.SampleRate/2); err != nil { // jitter buffer, device latency
		t.Fatal(err)
	}
	pcm, err := tap.rec.Wait(ctx, audio.SampleRate*3/2)
	if err != nil {
		t.Fatal(err)
	}
	loud := loudPart(pcm)
	if got := audiotest.DominantFrequency(loud, audio.SampleRate); math.Abs(got-440) > 10 {
		t.Fatalf("captured %.1f Hz through the loopback, want 440 ± 10 (RMS %.3f, stats %+v, party %+v)",
			got, audiotest.RMS(loud), e.Stats(), p.Stats())
	}
	if r := audiotest.RMS(loud); r < 0.1 {
		t.Fatalf("captured RMS %.3f, want the party's tone (about 0.2)", r)
	}
	t.Logf("party round trip: %d of %d samples loud, stats %+v", len(loud), len(pcm), e.Stats())

	tap.setFeeder(nil)
	p.Close()
	if err := e.Ring(audio.ToneRingtone); err != nil {
		t.Fatal(err)
	}
	pcm, err = tap.rec.Wait(ctx, audio.SampleRate*2)
	if err != nil {
		t.Fatal(err)
	}
	if got := audiotest.DominantFrequency(loudPart(pcm[audio.SampleRate/4:]), audio.SampleRate); math.Abs(got-800) > 10 {
		t.Fatalf("ringtone captured at %.1f Hz, want 800 ± 10 (stats %+v)", got, e.Stats())
	}
	t.Logf("stats: %+v", e.Stats())
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("Err after Close: %v", err)
	}
}

// TestKernelDeviceSelection checks name matching against a real ALSA device
// list: an unknown name is ErrNoDevice listing the devices, a name matching
// several devices is refused.
func TestKernelDeviceSelection(t *testing.T) {
	cfg := loopbackConfig(t)
	cfg.Playback, cfg.Capture = "NoSuchCard", "NoSuchCard"
	_, err := audio.New(cfg)
	if !errors.Is(err, audio.ErrNoDevice) || !strings.Contains(err.Error(), "Loopback") {
		t.Fatalf("unknown device: %v; want ErrNoDevice listing the Loopback card", err)
	}
	t.Logf("unknown device: %v", err)
	cfg.Playback, cfg.Capture = "Loopback", "Loopback"
	e, err := audio.New(cfg)
	if err == nil {
		// One Loopback entry matched: then it must open for real.
		t.Logf("device: %+v", e.Info())
		e.Close()
		return
	}
	if errors.Is(err, audio.ErrNoDevice) || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("substring matching several devices: %v; want an ambiguity error", err)
	}
	t.Logf("ambiguous: %v", err)
}
