package audio_test

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// encodeTone returns n 20 ms Opus packets of a sine at freq Hz.
func encodeTone(t testing.TB, freq float64, n int) [][]byte {
	return audio.TonePackets(t, freq, n, false)
}

// startNull starts an engine on the null backend and closes it at cleanup,
// checking that its goroutines are gone.
func startNull(t *testing.T, cfg audio.Config) *audio.Engine {
	t.Helper()
	before := runtime.NumGoroutine()
	cfg.Backend = audio.BackendNull
	e, err := audio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		e.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		select {
		case <-e.Done():
		default:
			t.Error("Done not closed after Close")
		}
		waitGoroutines(t, before)
	})
	return e
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want <= %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// frameSink collects encoded frames from OnEncoded.
type frameSink struct {
	mu     sync.Mutex
	frames []audio.Frame
}

func (s *frameSink) add(f audio.Frame) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

// wait returns the next n frames collected after the call.
func (s *frameSink) wait(ctx context.Context, t *testing.T, n int) []audio.Frame {
	t.Helper()
	s.mu.Lock()
	start := len(s.frames)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if len(s.frames)-start >= n {
			out := append([]audio.Frame(nil), s.frames[start:start+n]...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d encoded frames: %v", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func decodeFrames(t *testing.T, frames []audio.Frame) []int16 {
	t.Helper()
	dec, err := opus.NewDecoder(audio.SampleRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []int16
	pcm := make([]int16, 5760)
	for _, f := range frames {
		n, err := dec.Decode(f.Opus, pcm)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pcm[:n]...)
	}
	return out
}

func TestToneSourceEncodesToSameFrequency(t *testing.T) {
	ctx := testCtx(t)
	e := startNull(t, audio.Config{Source: &audiotest.Tone{Freq: 440, Amp: 0.5}})
	var sink frameSink
	e.OnEncoded(sink.add)
	frames := sink.wait(ctx, t, 50) // 1 s in real time
	for i, f := range frames {
		if f.Duration != audio.FrameDuration || len(f.Opus) == 0 {
			t.Fatalf("frame %d: %v, %d bytes", i, f.Duration, len(f.Opus))
		}
		if i > 0 && f.Timestamp-frames[i-1].Timestamp != audio.FrameSamples {
			t.Fatalf("frame %d timestamp %d after %d", i, f.Timestamp, frames[i-1].Timestamp)
		}
	}
	pcm := decodeFrames(t, frames)
	if got := audiotest.DominantFrequency(pcm[9600:], audio.SampleRate); math.Abs(got-440) > 10 {
		t.Fatalf("dominant frequency %.1f Hz, want 440 ± 10", got)
	}
	if st := e.Stats(); st.Frames < 50 {
		t.Fatalf("stats %+v", st)
	}
}

// feeder pushes one packet per party each time the engine encodes a frame,
// which paces it on the device clock.
type feeder struct {
	mu      sync.Mutex
	parties []*audio.Party
	packets [][][]byte
	next    int
}

func (f *feeder) tick(audio.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.parties {
		pk := f.packets[i][f.next%len(f.packets[i])]
		p.Push(uint16(f.next), uint32(f.next*audio.FrameSamples), pk)
	}
	f.next++
}

func TestTwoPartiesAreMixed(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	a, err := e.AddParty("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.AddParty("b")
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{parties: []*audio.Party{a, b}, packets: [][][]byte{encodeTone(t, 440, 50), encodeTone(t, 880, 50)}}
	var mu sync.Mutex
	var levels []audio.Levels
	e.OnLevels(func(l audio.Levels) { mu.Lock(); levels = append(levels, l); mu.Unlock() })
	e.OnEncoded(f.tick)
	if _, err := rec.Wait(ctx, audio.SampleRate/2); err != nil { // let the jitter buffers fill
		t.Fatal(err)
	}
	got, err := rec.Wait(ctx, audio.SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	for _, freq := range []float64{440, 880} {
		if frac := audiotest.BandFraction(got, audio.SampleRate, freq-15, freq+15); frac < 0.3 {
			t.Errorf("%v Hz carries %.2f of the mix, want >= 0.3", freq, frac)
		}
	}
	if s := audiotest.LongestSilence(got, 100); s > 96 {
		t.Errorf("mix has %d samples of silence", s)
	}
	if la, lb := a.Level(), b.Level(); la < 60 || lb < 60 {
		t.Errorf("levels a=%d b=%d, want >= 60 for a -10 dBFS tone", la, lb)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(levels) == 0 || levels[len(levels)-1].Parties["a"] < 60 || levels[len(levels)-1].Parties["b"] < 60 {
		t.Errorf("OnLevels reported %v", levels)
	}
	if st := a.Stats(); st.Jitter.Played < 50 || st.DecodeErrors != 0 {
		t.Errorf("party a stats %+v", st)
	}
}

// playTone starts a null engine recording its speaker, with one party "a"
// fed a 440 Hz tone.
func playTone(t *testing.T) (*audio.Engine, *audio.Party, *audiotest.Recorder) {
	t.Helper()
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	a, err := e.AddParty("a")
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{parties: []*audio.Party{a}, packets: [][][]byte{encodeTone(t, 440, 50)}}
	e.OnEncoded(f.tick)
	return e, a, rec
}

func TestPartyCloseRemovesItFromTheMix(t *testing.T) {
	ctx := testCtx(t)
	_, a, rec := playTone(t)
	got, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	if audiotest.RMS(got[len(got)/2:]) < 0.1 {
		t.Fatal("party not heard")
	}
	a.Close()
	got, err = rec.Wait(ctx, audio.SampleRate/5)
	if err != nil {
		t.Fatal(err)
	}
	if rms := audiotest.RMS(got[2*audio.FrameSamples:]); rms != 0 {
		t.Fatalf("closed party still heard: RMS %v", rms)
	}
}

// segments splits a recording into on/off runs of 10 ms windows.
type segment struct {
	on bool
	ms int
}

func cadence(samples []int16) []segment {
	var out []segment
	for _, rms := range audiotest.Envelope(samples, audio.SampleRate/100) {
		on := rms > 0.05
		if len(out) > 0 && out[len(out)-1].on == on {
			out[len(out)-1].ms += 10
			continue
		}
		out = append(out, segment{on, 10})
	}
	return out
}

func checkCadence(t *testing.T, got []segment, want []segment) {
	t.Helper()
	if len(got) < len(want) {
		t.Fatalf("cadence %v, want at least %v", got, want)
	}
	for i, w := range want {
		g := got[i]
		tol := 20
		if i == len(want)-1 {
			tol = 1 << 30 // the last run is cut by the recording's end
			if g.ms < w.ms-20 {
				t.Fatalf("cadence %v: run %d %v shorter than %v", got, i, g, w)
			}
		}
		if g.on != w.on || g.ms < w.ms-tol || g.ms > w.ms+tol {
			t.Fatalf("cadence %v, want %v (±%d ms)", got, want, 20)
		}
	}
}

// toneRecording rings t and returns the recording from the tone's onset.
func toneRecording(ctx context.Context, t *testing.T, e *audio.Engine, rec *audiotest.Recorder, tone audio.Tone, ms int) []int16 {
	t.Helper()
	if err := e.Ring(tone); err != nil {
		t.Fatal(err)
	}
	got, err := rec.Wait(ctx, audio.SampleRate*(ms+200)/1000)
	if err != nil {
		t.Fatal(err)
	}
	onset := 0
	for onset < len(got) && got[onset] == 0 {
		onset++
	}
	if onset > audio.SampleRate/5 {
		t.Fatalf("tone started %d ms after Ring", onset*1000/audio.SampleRate)
	}
	return got[onset : onset+audio.SampleRate*ms/1000]
}

func TestRingbackCadenceAndStop(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	got := toneRecording(ctx, t, e, rec, audio.ToneRingback, 1600)
	if f := audiotest.DominantFrequency(got[:audio.SampleRate/2], audio.SampleRate); math.Abs(f-425) > 5 {
		t.Fatalf("ringback at %.1f Hz, want 425", f)
	}
	checkCadence(t, cadence(got), []segment{{true, 1000}, {false, 600}})
	e.StopRing()
	if err := e.Ring(audio.ToneBusy); err != nil {
		t.Fatal(err)
	}
	e.StopRing()
	after, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	if rms := audiotest.RMS(after[audio.FrameSamples:]); rms != 0 {
		t.Fatalf("tone still audible after StopRing: RMS %v", rms)
	}
}

func TestRingtoneCadence(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	got := toneRecording(ctx, t, e, rec, audio.ToneRingtone, 1500)
	if f := audiotest.DominantFrequency(got[:audio.SampleRate*2/5], audio.SampleRate); math.Abs(f-800) > 5 {
		t.Fatalf("ringtone at %.1f Hz, want 800", f)
	}
	checkCadence(t, cadence(got), []segment{{true, 400}, {false, 200}, {true, 400}, {false, 500}})
	if err := e.Ring(audio.ToneUnknown); err == nil {
		t.Fatal("Ring(ToneUnknown) accepted")
	}
}

func TestMuteSilencesTheCapturedStream(t *testing.T) {
	ctx := testCtx(t)
	e := startNull(t, audio.Config{Source: &audiotest.Tone{Freq: 440, Amp: 0.5}})
	var sink frameSink
	e.OnEncoded(sink.add)
	loud := decodeFrames(t, sink.wait(ctx, t, 25))
	e.SetMuted(true)
	if !e.Muted() {
		t.Fatal("Muted() false after SetMuted(true)")
	}
	muted := decodeFrames(t, sink.wait(ctx, t, 25))
	if r := audiotest.RMS(loud[4800:]); r < 0.2 {
		t.Fatalf("unmuted RMS %v", r)
	}
	// Skip the frame in flight and the decoder's fade-out.
	if r := audiotest.RMS(muted[3*audio.FrameSamples:]); r > 0.001 {
		t.Fatalf("muted RMS %v, want silence", r)
	}
	// A full level window after muting reads 0.
	sink.wait(ctx, t, 20)
	if l := e.MicLevel(); l != 0 {
		t.Fatalf("mic level %d while muted", l)
	}
}

func TestVolumeScales(t *testing.T) {
	ctx := testCtx(t)
	e, _, rec := playTone(t)
	rec.Wait(ctx, audio.SampleRate/2)
	full, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	e.SetVolume(50)
	rec.Wait(ctx, 2*audio.FrameSamples)
	half, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	ratio := audiotest.RMS(half) / audiotest.RMS(full)
	if math.Abs(ratio-0.5) > 0.05 {
		t.Fatalf("volume 50%%: RMS ratio %.3f, want 0.5", ratio)
	}
	e.SetVolume(-5)
	if e.Volume() != 0 {
		t.Fatalf("volume %d after SetVolume(-5), want 0", e.Volume())
	}
}

func TestLoudMixDoesNotWrap(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	e.SetVolume(200)
	var parties []*audio.Party
	var packets [][][]byte
	tone := encodeTone(t, 440, 50) // the same phase in all four: they add up
	for _, id := range []string{"a", "b", "c", "d"} {
		p, err := e.AddParty(id)
		if err != nil {
			t.Fatal(err)
		}
		parties = append(parties, p)
		packets = append(packets, tone)
	}
	e.OnEncoded((&feeder{parties: parties, packets: packets}).tick)
	rec.Wait(ctx, audio.SampleRate/2)
	got, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	// 4 × 0.3 × 2 = 2.4 times full scale: the limiter must keep a clean
	// sine rather than a wrapped or hard-clipped one.
	if f := audiotest.BandFraction(got, audio.SampleRate, 420, 460); f < 0.97 {
		t.Fatalf("only %.3f of the energy at 440 Hz: distorted", f)
	}
	clipped := 0
	for _, s := range got {
		if s == 32767 || s == -32768 {
			clipped++
		}
	}
	if clipped > len(got)/1000 {
		t.Fatalf("%d clipped samples", clipped)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  audio.Config
		want string
	}{
		{audio.Config{Backend: audio.BackendALSA, Capture: "x"}, "playback"},
		{audio.Config{Playback: "x"}, "capture"},
		{audio.Config{Backend: audio.BackendNull, Bitrate: 100}, "bitrate"},
		{audio.Config{Backend: audio.BackendNull, Complexity: 11}, "complexity"},
		{audio.Config{Backend: audio.BackendNull, Period: time.Second}, "period"},
		{audio.Config{Backend: audio.BackendNull, JitterTarget: 100 * time.Millisecond, JitterMax: 120 * time.Millisecond}, "jitter max"},
		{audio.Config{Backend: audio.Backend(42)}, "backend"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}
	var b audio.Backend
	if err := b.UnmarshalText([]byte("ALSA")); err != nil || b != audio.BackendALSA {
		t.Errorf("UnmarshalText(ALSA) = %v, %v", b, err)
	}
	if err := b.UnmarshalText([]byte("oss")); err == nil {
		t.Error("UnmarshalText(oss) accepted")
	}
}

func TestMissingSoundCard(t *testing.T) {
	if _, err := os.Stat("/dev/snd"); err == nil {
		t.Skip("this machine has a sound card (/dev/snd exists); the test needs one without")
	}
	cfg := audio.Config{Backend: audio.BackendALSA, Playback: "hw:0,0", Capture: "hw:0,0"}
	_, err := audio.New(cfg)
	if !errors.Is(err, audio.ErrNoDevice) || !strings.Contains(err.Error(), "/dev/snd") {
		t.Fatalf("New without a sound card: %v; want ErrNoDevice naming /dev/snd", err)
	}
	t.Logf("error: %v", err)
	cfg.Playback, cfg.Capture = "USB Audio", "USB Audio"
	_, err = audio.New(cfg)
	if !errors.Is(err, audio.ErrNoDevice) {
		t.Fatalf("New with a device name and no card: %v; want ErrNoDevice", err)
	}
	t.Logf("error: %v", err)

	cfg.NullFallback = true
	e, err := audio.New(cfg)
	if err != nil {
		t.Fatalf("New with NullFallback: %v", err)
	}
	defer e.Close()
	if info := e.Info(); !info.Fallback || info.Backend != audio.BackendNull {
		t.Fatalf("info %+v, want a null fallback", info)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycle(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := audio.New(audio.Config{Backend: audio.BackendNull})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	cancel()
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("engine still running after its context was cancelled")
	}
	if err := e.Err(); err != nil {
		t.Fatalf("Err after cancel: %v", err)
	}
	if _, err := e.AddParty("late"); err != nil {
		t.Fatalf("AddParty before Close: %v", err)
	}
	e.Close()
	e.Close()
	if _, err := e.AddParty("x"); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("AddParty after Close: %v", err)
	}
	if err := e.Start(context.Background()); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	waitGoroutines(t, before)

	// Close without Start.
	e2, err := audio.New(audio.Config{Backend: audio.BackendNull})
	if err != nil {
		t.Fatal(err)
	}
	e2.Close()
}

// waitStats polls the engine's counters until ok accepts them.
func waitStats(ctx context.Context, t *testing.T, e *audio.Engine, what string, ok func(audio.Stats) bool) audio.Stats {
	t.Helper()
	for {
		st := e.Stats()
		if ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; stats %+v", what, ctx.Err(), st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// An engine with nothing to encode or play pauses its device; a tone, an
// encoded-frame consumer or a party resumes it.
func TestIdleEnginePausesItsDevice(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	st := waitStats(ctx, t, e, "the first pause", func(s audio.Stats) bool { return s.Paused })
	if st.Pauses != 1 || st.Frames < 50 {
		t.Fatalf("first pause after %d frames (%d pauses), want one after >= 50 idle frames", st.Frames, st.Pauses)
	}
	// Paused, the device runs no callback: nothing is processed. The
	// engine would process 10 frames in this time if it ran.
	time.Sleep(200 * time.Millisecond)
	if got := e.Stats().Frames; got != st.Frames {
		t.Fatalf("%d frames processed while paused", got-st.Frames)
	}

	// Ringing resumes the device at once.
	rec.Reset()
	if err := e.Ring(audio.ToneRingtone); err != nil {
		t.Fatal(err)
	}
	got, err := rec.Wait(ctx, audio.SampleRate/2)
	if err != nil {
		t.Fatal(err)
	}
	if f := audiotest.DominantFrequency(got[:audio.SampleRate*2/5], audio.SampleRate); math.Abs(f-800) > 5 {
		t.Fatalf("after resuming the ringtone plays at %.1f Hz, want 800", f)
	}
	if st := e.Stats(); st.Paused || st.Pauses != 1 {
		t.Fatalf("ringing: %+v, want running", st)
	}
	e.StopRing()
	waitStats(ctx, t, e, "the pause after StopRing", func(s audio.Stats) bool { return s.Paused && s.Pauses == 2 })

	// A consumer of encoded frames resumes it; removing it pauses again.
	var sink frameSink
	e.OnEncoded(sink.add)
	sink.wait(ctx, t, 5)
	e.OnEncoded(nil)
	waitStats(ctx, t, e, "the pause after OnEncoded(nil)", func(s audio.Stats) bool { return s.Paused && s.Pauses == 3 })

	// So does a party, until it is closed.
	p, err := e.AddParty("a")
	if err != nil {
		t.Fatal(err)
	}
	waitStats(ctx, t, e, "a running device for the party", func(s audio.Stats) bool { return !s.Paused })
	p.Close()
	waitStats(ctx, t, e, "the pause after the party left", func(s audio.Stats) bool { return s.Paused && s.Pauses == 4 })
}
