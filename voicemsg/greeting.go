package voicemsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxGreeting bounds a greeting's length.
const MaxGreeting = 30 * time.Second

// maxWAV bounds a greeting file: 30 s of 96 kHz stereo and the headers.
const maxWAV = 30*96000*2*2 + 1<<16

// ParseWAV reads a greeting: a RIFF WAVE file of 16-bit PCM (format 1, or
// extensible with the PCM subformat), mono or stereo, 8 to 96 kHz, at most
// MaxGreeting long. It returns the sound mixed down to mono and resampled
// to 48 kHz, as the audio engine plays it.
func ParseWAV(b []byte) ([]int16, error) {
	if len(b) > maxWAV {
		return nil, fmt.Errorf("%d bytes: longer than %v of 16-bit stereo at 96 kHz", len(b), MaxGreeting)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("not a WAV file (RIFF WAVE)")
	}
	var (
		channels, bits, format int
		rate                   int
		data                   []byte
		haveFmt, haveData      bool
	)
	for r := b[12:]; len(r) >= 8 && !haveData; {
		id, size := string(r[:4]), binary.LittleEndian.Uint32(r[4:8])
		r = r[8:]
		if uint64(size) > uint64(len(r)) {
			if id != "data" {
				return nil, fmt.Errorf("chunk %q of %d bytes runs past the end of the file", id, size)
			}
			size = uint32(len(r)) // a truncated data chunk: what is there
		}
		body := r[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errors.New("fmt chunk too short")
			}
			format = int(binary.LittleEndian.Uint16(body[0:]))
			channels = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
			bits = int(binary.LittleEndian.Uint16(body[14:]))
			if format == 0xfffe && size >= 26 {
				format = int(binary.LittleEndian.Uint16(body[24:])) // the subformat GUID's first two bytes
			}
			haveFmt = true
		case "data":
			data, haveData = body, true
		}
		r = r[min(len(r), int(size)+int(size&1)):] // chunks are padded to an even size
	}
	switch {
	case !haveFmt:
		return nil, errors.New("no fmt chunk")
	case !haveData:
		return nil, errors.New("no data chunk")
	case format != 1 || bits != 16:
		return nil, fmt.Errorf("format %d with %d bits a sample: want 16-bit PCM (format 1)", format, bits)
	case channels != 1 && channels != 2:
		return nil, fmt.Errorf("%d channels: want mono or stereo", channels)
	case rate < 8000 || rate > 96000:
		return nil, fmt.Errorf("%d Hz: want 8000 to 96000", rate)
	}
	frames := len(data) / (2 * channels)
	if frames == 0 {
		return nil, errors.New("no samples")
	}
	if time.Duration(frames)*time.Second/time.Duration(rate) > MaxGreeting {
		return nil, fmt.Errorf("%v long: at most %v", time.Duration(frames)*time.Second/time.Duration(rate), MaxGreeting)
	}
	mono := make([]float64, frames)
	for i := range mono {
		var sum float64
		for c := range channels {
			sum += float64(int16(binary.LittleEndian.Uint16(data[2*(i*channels+c):])))
		}
		mono[i] = sum / float64(channels)
	}
	return resample(mono, rate), nil
}

// resample converts to 48 kHz by linear interpolation: a greeting is
// speech through a small speaker, which this serves.
func resample(in []float64, rate int) []int16 {
	n := int(int64(len(in)) * 48000 / int64(rate))
	out := make([]int16, n)
	step := float64(rate) / 48000
	for i := range out {
		x := float64(i) * step
		j := int(x)
		v := in[min(j, len(in)-1)]
		if j+1 < len(in) {
			v += (in[j+1] - v) * (x - float64(j))
		}
		out[i] = int16(max(-32768, min(32767, math.Round(v))))
	}
	return out
}

// Prompt is the built-in greeting, without words: a rising three-note
// chime, a pause, then a long beep after which the door records.
func Prompt() []int16 {
	var out []int16
	note := func(hz float64, d time.Duration) {
		n := int(d.Seconds() * 48000)
		fade := 48000 / 100 // 10 ms, against clicks
		for i := range n {
			g := 0.25 * min(1, float64(i)/float64(fade), float64(n-i)/float64(fade))
			out = append(out, int16(math.Round(32767*g*math.Sin(2*math.Pi*hz*float64(i)/48000))))
		}
	}
	rest := func(d time.Duration) { out = append(out, make([]int16, int(d.Seconds()*48000))...) }
	note(523.25, 180*time.Millisecond) // C5
	note(659.25, 180*time.Millisecond) // E5
	note(783.99, 260*time.Millisecond) // G5
	rest(500 * time.Millisecond)
	note(1000, 500*time.Millisecond)
	rest(100 * time.Millisecond)
	return out
}
