package audio_test

import (
	"math"
	"testing"

	"github.com/intercomd/intercomd/hw/audio"
)

func TestMeter(t *testing.T) {
	window := audio.SampleRate * 300 / 1000
	for _, tc := range []struct {
		name string
		amp  float64 // of a square wave, in units of full scale (its RMS)
		want int
	}{
		{"silence", 0, 0},
		{"-60 dBFS", math.Pow(10, -60.0/20), 0},
		{"-30 dBFS", math.Pow(10, -30.0/20), 50},
		{"full scale", 32767.0 / 32768, 100},
	} {
		var m audio.Meter
		frame := make([]int16, audio.SampleRate/50)
		for i := range frame {
			v := int16(math.Round(tc.amp * 32768))
			if i%2 == 1 {
				v = -v
			}
			frame[i] = v
		}
		done := 0
		for n := 0; n < window; n += len(frame) {
			if m.Add(frame) {
				done++
			}
		}
		if done != 1 || m.Level() != tc.want {
			t.Errorf("%s: %d windows, level %d; want 1 window at %d", tc.name, done, m.Level(), tc.want)
		}
	}
}
