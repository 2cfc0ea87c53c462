package audiotest

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestDominantFrequency(t *testing.T) {
	for _, f := range []float64{100, 425, 440, 880, 1000, 3333.3, 12000} {
		got := DominantFrequency(Sine(f, 0.5, 48000, 24000), 48000)
		if math.Abs(got-f) > 1 {
			t.Errorf("DominantFrequency(%v Hz sine) = %.2f", f, got)
		}
	}
	if got := DominantFrequency(make([]int16, 4800), 48000); got != 0 {
		t.Errorf("silence: %v, want 0", got)
	}
}

func TestDominantFrequencyOfMixture(t *testing.T) {
	a := Sine(440, 0.2, 48000, 9600)
	b := Sine(880, 0.5, 48000, 9600)
	for i := range a {
		a[i] += b[i]
	}
	if got := DominantFrequency(a, 48000); math.Abs(got-880) > 2 {
		t.Fatalf("dominant = %v, want 880 (the louder)", got)
	}
	if f := BandFraction(a, 48000, 430, 450); f < 0.1 {
		t.Fatalf("440 Hz band fraction %v, want > 0.1", f)
	}
	if f := BandFraction(a, 48000, 600, 700); f > 0.01 {
		t.Fatalf("600-700 Hz band fraction %v, want ~0", f)
	}
}

func TestToneIsContinuousAcrossReads(t *testing.T) {
	const n = 48000
	want := make([]int16, n)
	for i := range want {
		want[i] = int16(math.Round(0.5 * 32767 * math.Sin(2*math.Pi*440*float64(i)/48000)))
	}
	tone := Tone{Freq: 440, Amp: 0.5}
	got := make([]int16, 0, n)
	for _, size := range []int{1, 7, 960, 441, 10000} { // uneven reads
		for len(got)+size <= n {
			buf := make([]int16, size)
			tone.Read(buf)
			got = append(got, buf...)
		}
	}
	rest := make([]int16, n-len(got))
	tone.Read(rest)
	got = append(got, rest...)
	for i := range want {
		if d := int(got[i]) - int(want[i]); d < -1 || d > 1 {
			t.Fatalf("sample %d: %d, want %d (±1)", i, got[i], want[i])
		}
	}
}

func TestGoertzel(t *testing.T) {
	s := Sine(1000, 1, 48000, 4800)
	on, off := Goertzel(s, 48000, 1000), Goertzel(s, 48000, 1500)
	if math.Abs(on-0.25) > 0.02 || off > 0.001 {
		t.Fatalf("goertzel on %v (want 0.25), off %v (want ~0)", on, off)
	}
}

func TestRecorderBoundedAndWait(t *testing.T) {
	r := NewRecorder(100)
	r.Write(make([]int16, 80))
	r.Write([]int16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30})
	if s := r.Samples(); len(s) != 100 || s[99] != 30 || r.Total() != 110 {
		t.Fatalf("len %d last %d total %d", len(s), s[len(s)-1], r.Total())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []int16)
	go func() {
		s, _ := r.Wait(ctx, 3)
		done <- s
	}()
	// Wait only counts samples written after it started: keep writing
	// until it returns.
	for i := int16(0); ; i++ {
		select {
		case s := <-done:
			if len(s) != 3 || s[1] != s[0]+1 || s[2] != s[1]+1 {
				t.Fatalf("wait returned %v", s)
			}
			return
		case <-time.After(time.Millisecond):
			r.Write([]int16{i})
		}
	}
}

func TestLongestSilence(t *testing.T) {
	s := []int16{100, 0, 1, -2, 0, 500, 0, 0}
	if got := LongestSilence(s, 2); got != 4 {
		t.Fatalf("got %d, want 4", got)
	}
}
