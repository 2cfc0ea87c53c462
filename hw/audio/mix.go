package audio

import "math"

// Meter turns samples into a voice level 0..100 over windows of 300 ms at
// SampleRate: -60 dBFS RMS and below is 0, full scale is 100. The device's
// engine and the softphone meter with it, so their levels compare. The zero
// value is ready; a Meter is not safe for concurrent use.
type Meter struct {
	sumSq float64
	n     int
	level int
}

const levelWindow = SampleRate * 300 / 1000

// Add accounts samples and reports whether a window completed, after which
// Level is that window's level.
func (m *Meter) Add(p []int16) bool {
	for _, s := range p {
		v := float64(s)
		m.sumSq += v * v
	}
	m.n += len(p)
	if m.n < levelWindow {
		return false
	}
	m.level = levelOf(math.Sqrt(m.sumSq/float64(m.n)) / 32768)
	m.sumSq, m.n = 0, 0
	return true
}

// Level is the level of the last completed window.
func (m *Meter) Level() int { return m.level }

// levelOf maps an RMS in units of full scale to 0..100.
func levelOf(rms float64) int {
	if rms <= 0 {
		return 0
	}
	db := 20 * math.Log10(rms)
	l := int(math.Round((db + 60) * 100 / 60))
	return max(0, min(100, l))
}

// limiter scales a mix down when it would clip: the gain drops at once to
// what the loudest sample of a frame allows and recovers by about 8 dB/s.
type limiter struct {
	gain float64 // current gain, <= 1; zero value means 1
}

const limiterRelease = 1.02 // gain growth per 20 ms frame

// apply writes acc×volume into out, limited to the int16 range.
func (l *limiter) apply(acc []int32, out []int16, volume float64) {
	if l.gain == 0 {
		l.gain = 1
	}
	var peak int32
	for _, v := range acc {
		if v < 0 {
			v = -v
		}
		peak = max(peak, v)
	}
	want := 1.0
	if p := float64(peak) * volume; p > 32767 {
		want = 32767 / p
	}
	from := l.gain
	to := min(want, from*limiterRelease, 1)
	if to < from {
		from = to // attack at once, release smoothly
	}
	n := float64(len(acc))
	for i, v := range acc {
		g := volume * (from + (to-from)*float64(i+1)/n)
		s := math.Round(float64(v) * g)
		out[i] = int16(max(-32768, min(32767, s)))
	}
	l.gain = to
}
