package aec

import (
	"math"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio/audiotest"
)

const (
	rate  = 48000
	frame = 960
)

// run plays far through an echo path (delay, gain) into the microphone, adds
// near, and returns what the canceller lets through.
func run(t *testing.T, far, near []int16, delay int, gain float64) []int16 {
	t.Helper()
	c, err := New(rate, frame, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mic := make([]int16, len(far))
	for i := range mic {
		v := float64(near[i])
		if i >= delay {
			v += gain * float64(far[i-delay])
		}
		mic[i] = int16(max(-32768, min(32767, v)))
	}
	out := make([]int16, len(far))
	for i := 0; i+frame <= len(far); i += frame {
		if err := c.Process(mic[i:i+frame], far[i:i+frame], out[i:i+frame]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestEchoReturnLossEnhancement: after the filter has converged, the echo
// of a speech-like far end is at least 25 dB weaker than in the microphone.
func TestEchoReturnLossEnhancement(t *testing.T) {
	n := 10 * rate
	far := audiotest.Voice(n, 1)
	silence := make([]int16, n)
	const delay, gain = 37 * rate / 1000, 0.5
	out := run(t, far, silence, delay, gain)
	tail := n - 3*rate // the last 3 s
	echo := 0.0
	for i := tail; i < n; i++ {
		v := gain * float64(far[i-delay])
		echo += v * v
	}
	erle := 10 * math.Log10(echo/max(audiotest.Energy(out[tail:]), 1))
	t.Logf("ERLE over the last 3 s: %.1f dB", erle)
	if erle < 25 {
		t.Fatalf("ERLE %.1f dB, want at least 25", erle)
	}
}

// TestNearEndPassesDuringDoubleTalk: a voice at the microphone while the far
// end talks still reaches the far end, within 6 dB of its level.
func TestNearEndPassesDuringDoubleTalk(t *testing.T) {
	n := 10 * rate
	far := audiotest.Voice(n, 1)
	near := audiotest.Voice(n, 7)
	for i := range near {
		near[i] /= 2
	}
	const delay, gain = 37 * rate / 1000, 0.5
	out := run(t, far, near, delay, gain)
	tail := n - 3*rate
	ratio := 10 * math.Log10(audiotest.Energy(out[tail:])/audiotest.Energy(near[tail:]))
	t.Logf("near end after the canceller: %+.1f dB", ratio)
	if ratio < -6 || ratio > 3 {
		t.Fatalf("near end %+.1f dB after the canceller, want within -6..+3 dB", ratio)
	}
}

func TestConfigChecked(t *testing.T) {
	for _, c := range []struct {
		rate, frame int
		tail        time.Duration
	}{{4000, 960, time.Second / 5}, {48000, 0, time.Second / 5}, {48000, 960, time.Millisecond}, {48000, 960, 2 * time.Second}} {
		if a, err := New(c.rate, c.frame, c.tail); err == nil {
			a.Close()
			t.Errorf("New(%d, %d, %v) accepted", c.rate, c.frame, c.tail)
		}
	}
	a, err := New(rate, frame, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Process(make([]int16, 10), make([]int16, frame), make([]int16, frame)); err == nil {
		t.Error("short frame accepted")
	}
	a.Close()
	a.Close()
	if err := a.Process(make([]int16, frame), make([]int16, frame), make([]int16, frame)); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

func BenchmarkProcess20ms(b *testing.B) {
	c, err := New(rate, frame, 200*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	far := audiotest.Voice(rate, 1)
	mic := audiotest.Voice(rate, 2)
	out := make([]int16, frame)
	i := 0
	for b.Loop() {
		o := (i % 49) * frame
		c.Process(mic[o:o+frame], far[o:o+frame], out)
		i++
	}
}
