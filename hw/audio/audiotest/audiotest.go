// Package audiotest holds helpers for testing intercomd audio: tone
// generators, a Source that replaces the microphone with a tone, a Sink that
// records what goes to the speaker, and spectral measurements (dominant
// frequency, energy in a band, RMS envelope) for assertions.
//
// It is an ordinary package (it does not import testing) so that tests of
// other packages, the engine's test hooks and bench commands can share it.
//
// Concurrency: Tone is owned by one goroutine (the engine's processing
// loop). Recorder is safe for concurrent use: the engine writes while a test
// reads. The functions are pure.
package audiotest

import (
	"context"
	"math"
	"math/cmplx"
	"math/rand"
	"sync"
	"time"
)

// Sine returns n samples of a sine at freq Hz with peak amplitude amp (0..1).
func Sine(freq, amp float64, rate, n int) []int16 {
	t := Tone{Freq: freq, Amp: amp, Rate: rate}
	out := make([]int16, n)
	t.Read(out)
	return out
}

// Tone is a sine generator usable as the engine's microphone source. The
// zero Rate means 48000.
type Tone struct {
	Freq  float64 // Hz
	Amp   float64 // peak amplitude, 0..1
	Rate  int     // samples per second
	phase float64
}

// Read fills p with the next samples of the tone. It rotates a phasor (four
// multiplications a sample rather than a math.Sin) from the exact phase at
// the start of each call, so no rounding error builds up across calls.
func (t *Tone) Read(p []int16) {
	rate := t.Rate
	if rate == 0 {
		rate = 48000
	}
	step := 2 * math.Pi * t.Freq / float64(rate)
	amp := t.Amp * 32767
	s, c := math.Sincos(t.phase)
	ds, dc := math.Sincos(step)
	for i := range p {
		p[i] = int16(math.Round(amp * s))
		s, c = s*dc+c*ds, c*dc-s*ds
	}
	t.phase = math.Mod(t.phase+step*float64(len(p)), 2*math.Pi)
}

// Voice returns n samples at 48 kHz of a voice-like signal: a gliding
// pitch around 150 Hz whose harmonics follow three formants, a little
// breath noise, and syllables about 2.3 times a second. Unlike a tone it is
// broadband, as an echo canceller needs; seed varies pitch and noise.
func Voice(n int, seed int64) []int16 {
	r := rand.New(rand.NewSource(seed))
	out := make([]int16, n)
	ph := 0.0
	for i := range out {
		t := float64(i) / 48000
		f0 := 150 + 40*math.Sin(2*math.Pi*0.5*t+float64(seed))
		ph += 2 * math.Pi * f0 / 48000
		v := 0.0
		for h := 1; h <= 25; h++ {
			fh := f0 * float64(h)
			g := math.Exp(-math.Pow((fh-600)/350, 2)) + 0.6*math.Exp(-math.Pow((fh-1700)/500, 2)) +
				0.3*math.Exp(-math.Pow((fh-2600)/600, 2)) + 0.03
			v += g * math.Sin(float64(h)*ph)
		}
		v += 0.1 * (r.Float64()*2 - 1)
		syllable := math.Max(0, math.Sin(2*math.Pi*2.3*t))
		out[i] = int16(4000 * v * (0.2 + syllable))
	}
	return out
}

// Energy returns the sum of the squared samples.
func Energy(samples []int16) float64 {
	e := 0.0
	for _, v := range samples {
		e += float64(v) * float64(v)
	}
	return e
}

// Recorder is a bounded sink keeping the most recent samples written to it.
type Recorder struct {
	mu      sync.Mutex
	max     int
	samples []int16
	total   int
}

// NewRecorder returns a recorder keeping at most max samples (the oldest are
// discarded beyond it).
func NewRecorder(max int) *Recorder {
	return &Recorder{max: max}
}

// Write appends a copy of p.
func (r *Recorder) Write(p []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, p...)
	r.total += len(p)
	if over := len(r.samples) - r.max; over > 0 {
		r.samples = append(r.samples[:0], r.samples[over:]...)
	}
}

// Samples returns a copy of the samples held.
func (r *Recorder) Samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.samples...)
}

// Total returns how many samples were written since creation or Reset.
func (r *Recorder) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Reset discards everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = r.samples[:0]
	r.total = 0
}

// Wait returns the next n samples written after the call, or ctx's error.
func (r *Recorder) Wait(ctx context.Context, n int) ([]int16, error) {
	if n > r.max {
		n = r.max
	}
	r.mu.Lock()
	start := r.total
	r.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		if got := r.total - start; got >= n {
			// The wanted samples end got-n from the end of the buffer.
			end := len(r.samples) - (got - n)
			out := append([]int16(nil), r.samples[end-n:end]...)
			r.mu.Unlock()
			return out, nil
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// RMS returns the root mean square of samples, in units of full scale (0..1).
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range samples {
		v := float64(s) / 32768
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(samples)))
}

// Envelope returns the RMS of each consecutive window of samples.
func Envelope(samples []int16, window int) []float64 {
	var out []float64
	for i := 0; i+window <= len(samples); i += window {
		out = append(out, RMS(samples[i:i+window]))
	}
	return out
}

// LongestSilence returns the length in samples of the longest run whose
// absolute value stays at or below threshold (full scale 32767).
func LongestSilence(samples []int16, threshold int16) int {
	best, run := 0, 0
	for _, s := range samples {
		if s <= threshold && s >= -threshold {
			run++
			if run > best {
				best = run
			}
		} else {
			run = 0
		}
	}
	return best
}

// Goertzel returns the power of samples at freq Hz, normalised so that a full
// scale sine at exactly freq gives about 0.25 (independent of length).
func Goertzel(samples []int16, rate int, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s0 := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples))
	return p / (n * n)
}

// DominantFrequency returns the frequency in Hz with the most energy in
// samples (Hann-windowed FFT over the largest power-of-two prefix, at most
// 65536 samples, refined by parabolic interpolation). It returns 0 for
// silence or fewer than 64 samples.
func DominantFrequency(samples []int16, rate int) float64 {
	spec, n := spectrum(samples)
	if n == 0 {
		return 0
	}
	best := 1
	for k := 2; k < len(spec)-1; k++ {
		if spec[k] > spec[best] {
			best = k
		}
	}
	if spec[best] == 0 {
		return 0
	}
	// Parabolic interpolation on log magnitudes.
	a, b, c := math.Log(spec[best-1]+1e-30), math.Log(spec[best]+1e-30), math.Log(spec[best+1]+1e-30)
	delta := 0.0
	if d := a - 2*b + c; d != 0 {
		delta = 0.5 * (a - c) / d
	}
	return (float64(best) + delta) * float64(rate) / float64(n)
}

// BandFraction returns the fraction (0..1) of the signal's energy that lies
// within [lo, hi] Hz.
func BandFraction(samples []int16, rate int, lo, hi float64) float64 {
	spec, n := spectrum(samples)
	if n == 0 {
		return 0
	}
	var in, total float64
	for k := 1; k < len(spec); k++ {
		f := float64(k) * float64(rate) / float64(n)
		total += spec[k]
		if f >= lo && f <= hi {
			in += spec[k]
		}
	}
	if total == 0 {
		return 0
	}
	return in / total
}

// spectrum returns the power spectrum (bins 0..n/2) of a Hann-windowed
// power-of-two prefix of samples, and n.
func spectrum(samples []int16) ([]float64, int) {
	n := 1
	for n*2 <= len(samples) && n < 65536 {
		n *= 2
	}
	if n < 64 {
		return nil, 0
	}
	x := make([]complex128, n)
	for i := 0; i < n; i++ {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		x[i] = complex(w*float64(samples[i])/32768, 0)
	}
	fft(x)
	spec := make([]float64, n/2+1)
	for k := range spec {
		m := cmplx.Abs(x[k])
		spec[k] = m * m
	}
	return spec, n
}

// fft is an in-place iterative radix-2 FFT; len(x) must be a power of two.
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		step := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			w := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u := x[start+k]
				v := x[start+k+size/2] * w
				x[start+k] = u + v
				x[start+k+size/2] = u - v
				w *= step
			}
		}
	}
}
