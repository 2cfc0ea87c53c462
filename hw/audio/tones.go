package audio

import (
	"fmt"
	"math"
)

// Tone names a call progress tone played through the speaker.
type Tone int

// Tones. Cadences follow European practice (ETSI TR 101 041).
const (
	ToneUnknown Tone = iota
	// ToneRingtone: the device is being called. 800 Hz, a double ring:
	// 0.4 s on, 0.2 s off, 0.4 s on, 2 s off.
	ToneRingtone
	// ToneRingback: the device is calling and the far end is alerted.
	// 425 Hz, 1 s on, 4 s off.
	ToneRingback
	// ToneBusy: the far end is busy or rejected the call. 425 Hz, 0.5 s on,
	// 0.5 s off.
	ToneBusy
)

func (t Tone) String() string {
	switch t {
	case ToneRingtone:
		return "ringtone"
	case ToneRingback:
		return "ringback"
	case ToneBusy:
		return "busy"
	default:
		return fmt.Sprintf("Tone(%d)", int(t))
	}
}

// segment is one part of a cadence: freq Hz (0 for a pause) for ms.
type segment struct {
	freq float64
	ms   int
}

// cadence returns the repeating pattern of a tone.
func (t Tone) cadence() []segment {
	switch t {
	case ToneRingtone:
		return []segment{{800, 400}, {0, 200}, {800, 400}, {0, 2000}}
	case ToneRingback:
		return []segment{{425, 1000}, {0, 4000}}
	case ToneBusy:
		return []segment{{425, 500}, {0, 500}}
	default:
		return nil
	}
}

const (
	toneAmplitude = 0.35 * 32767 // about -9 dBFS
	toneRamp      = SampleRate * 5 / 1000
)

// toneGen renders a tone's cadence sample by sample. It is owned by the
// engine's processing goroutine.
type toneGen struct {
	pattern []segment
	seg     int // index in pattern
	pos     int // sample position in the segment
	phase   float64
}

func (g *toneGen) start(t Tone) {
	*g = toneGen{pattern: t.cadence()}
}

func (g *toneGen) stop() { g.pattern = nil }

// add mixes the next len(acc) samples of the tone into acc.
func (g *toneGen) add(acc []int32) {
	if len(g.pattern) == 0 {
		return
	}
	for i := range acc {
		s := g.pattern[g.seg]
		length := s.ms * SampleRate / 1000
		if s.freq > 0 {
			env := 1.0
			if g.pos < toneRamp {
				env = float64(g.pos) / toneRamp
			} else if rest := length - g.pos; rest < toneRamp {
				env = float64(rest) / toneRamp
			}
			acc[i] += int32(env * toneAmplitude * math.Sin(g.phase))
			g.phase += 2 * math.Pi * s.freq / SampleRate
			if g.phase > 2*math.Pi {
				g.phase -= 2 * math.Pi
			}
		}
		g.pos++
		if g.pos >= length {
			g.pos = 0
			g.phase = 0
			g.seg = (g.seg + 1) % len(g.pattern)
		}
	}
}
