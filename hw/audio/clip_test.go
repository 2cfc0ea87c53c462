package audio_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
)

// Play resumes a paused engine, plays the clip once through the speaker
// and returns when it is queued; then the speaker is silent again.
func TestPlayPlaysAClipOnce(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	waitStats(ctx, t, e, "the pause", func(s audio.Stats) bool { return s.Paused })
	rec.Reset()
	clip := audiotest.Sine(600, 0.3, audio.SampleRate, audio.SampleRate/2)
	if err := e.Play(ctx, clip); err != nil {
		t.Fatal(err)
	}
	got := rec.Samples()
	if len(got) < len(clip) {
		t.Fatalf("Play returned after %d samples reached the speaker, want %d", len(got), len(clip))
	}
	if f := audiotest.DominantFrequency(got[:len(clip)], audio.SampleRate); math.Abs(f-600) > 5 {
		t.Fatalf("the speaker played %.1f Hz, want the clip's 600 Hz", f)
	}
	after, err := rec.Wait(ctx, audio.SampleRate/10)
	if err != nil {
		t.Fatal(err)
	}
	if rms := audiotest.RMS(after); rms != 0 {
		t.Fatalf("the clip still heard after Play returned: RMS %v", rms)
	}
	waitStats(ctx, t, e, "the pause after the clip", func(s audio.Stats) bool { return s.Paused && s.Pauses == 2 })
}

// A cancelled Play silences its clip at once; a second Play cuts off the
// first.
func TestPlayStops(t *testing.T) {
	ctx := testCtx(t)
	rec := audiotest.NewRecorder(audio.SampleRate * 5)
	e := startNull(t, audio.Config{Sink: rec})
	long := audiotest.Sine(600, 0.3, audio.SampleRate, audio.SampleRate*20)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Play(pctx, long) }()
	if got, err := rec.Wait(ctx, audio.SampleRate/5); err != nil || audiotest.RMS(got) < 0.1 {
		t.Fatalf("the clip is not heard: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Play: %v", err)
	}
	// Up to the speaker queue's margin was queued before the cancel.
	got, err := rec.Wait(ctx, audio.SampleRate/5)
	if err != nil {
		t.Fatal(err)
	}
	if rms := audiotest.RMS(got[audio.SampleRate/10:]); rms != 0 {
		t.Fatalf("the cancelled clip still heard: RMS %v", rms)
	}

	go func() { done <- e.Play(ctx, long) }()
	if got, err := rec.Wait(ctx, audio.SampleRate/5); err != nil || audiotest.RMS(got) < 0.1 {
		t.Fatalf("the clip is not heard: %v", err)
	}
	if err := e.Play(ctx, audiotest.Sine(900, 0.3, audio.SampleRate, audio.SampleRate/5)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, audio.ErrCut) {
		t.Fatalf("replaced Play: %v, want ErrCut", err)
	}
}

// OnCapture receives the microphone frame by frame beside OnEncoded and
// keeps the device running.
func TestOnCaptureTapsTheMicrophone(t *testing.T) {
	ctx := testCtx(t)
	e := startNull(t, audio.Config{Source: &audiotest.Tone{Freq: 1000, Amp: 0.3}})
	taps := make(chan []int16, 100)
	e.OnCapture(func(p []int16) {
		select {
		case taps <- append([]int16(nil), p...):
		default:
		}
	})
	var sink frameSink
	e.OnEncoded(sink.add)
	var got []int16
	for len(got) < audio.SampleRate/2 {
		select {
		case p := <-taps:
			if len(p) != audio.FrameSamples {
				t.Fatalf("a tapped frame of %d samples", len(p))
			}
			got = append(got, p...)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if f := audiotest.DominantFrequency(got, audio.SampleRate); math.Abs(f-1000) > 5 {
		t.Fatalf("tapped %.1f Hz, want 1000", f)
	}
	sink.wait(ctx, t, 5) // OnEncoded still served
	e.OnEncoded(nil)
	// More than the second of idle frames after which an engine pauses.
	pauses := e.Stats().Pauses
	for range 75 {
		select {
		case <-taps:
		case <-ctx.Done():
			t.Fatalf("the tap stopped: %v", ctx.Err())
		}
	}
	if st := e.Stats(); st.Paused || st.Pauses != pauses {
		t.Fatalf("paused while tapped: %+v", st)
	}
	e.OnCapture(nil)
	waitStats(ctx, t, e, "the pause without a tap", func(s audio.Stats) bool { return s.Paused })
}
