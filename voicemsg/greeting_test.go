package voicemsg_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/voicemsg"
)

// wav builds a RIFF WAVE file of 16-bit PCM (format 1 unless told).
func wav(format, channels, rate, bits int, samples []int16) []byte {
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVE"...)
	b = append(b, "LIST\x04\x00\x00\x00INFO"...) // a chunk to skip
	b = append(b, "fmt \x10\x00\x00\x00"...)
	b = binary.LittleEndian.AppendUint16(b, uint16(format))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(2*len(samples)))
	for _, s := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func TestParseWAV(t *testing.T) {
	// Half a second of 500 Hz at 16 kHz, stereo.
	mono := audiotest.Sine(500, 0.3, 16000, 8000)
	stereo := make([]int16, 0, 2*len(mono))
	for _, s := range mono {
		stereo = append(stereo, s, s)
	}
	pcm, err := voicemsg.ParseWAV(wav(1, 2, 16000, 16, stereo))
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) != 24000 {
		t.Errorf("%d samples at 48 kHz, want 24000", len(pcm))
	}
	if f := audiotest.DominantFrequency(pcm, 48000); math.Abs(f-500) > 5 {
		t.Errorf("resampled to %.1f Hz, want 500", f)
	}
	if r := audiotest.RMS(pcm); math.Abs(r-0.3/math.Sqrt2) > 0.01 {
		t.Errorf("RMS %.3f after the mix-down, want %.3f", r, 0.3/math.Sqrt2)
	}

	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"not a WAV", []byte("ID3\x04 an mp3"), "not a WAV file"},
		{"8-bit", wav(1, 1, 8000, 8, mono[:100]), "want 16-bit PCM"},
		{"float", wav(3, 1, 48000, 16, mono[:100]), "want 16-bit PCM"},
		{"5.1", wav(1, 6, 48000, 16, mono[:600]), "6 channels"},
		{"4 kHz", wav(1, 1, 4000, 16, mono[:100]), "4000 Hz"},
		{"empty", wav(1, 1, 48000, 16, nil), "no samples"},
		{"no data", wav(1, 1, 48000, 16, nil)[:52], "no data chunk"},
		{"too long", wav(1, 1, 8000, 16, make([]int16, 31*8000)), "at most 30s"},
		{"a chunk past the end", append([]byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\x00\x00\x00"), make([]byte, 20)...), "runs past the end"},
	} {
		if _, err := voicemsg.ParseWAV(tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wav(1, 1, 8000, 16, audiotest.Sine(500, 0.3, 8000, 100)))
	f.Add(wav(1, 2, 44100, 16, audiotest.Sine(500, 0.3, 44100, 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := voicemsg.ParseWAV(b)
		if err == nil && (len(pcm) == 0 || len(pcm) > 31*48000) {
			t.Fatalf("%d samples accepted", len(pcm))
		}
	})
}

// The built-in prompt is a few seconds at most and ends on its 1 kHz beep.
func TestPrompt(t *testing.T) {
	p := voicemsg.Prompt()
	if len(p) < 48000 || len(p) > 3*48000 {
		t.Fatalf("a prompt of %d samples", len(p))
	}
	end := p[len(p)-48000*6/10 : len(p)-48000/10]
	if f := audiotest.DominantFrequency(end, 48000); math.Abs(f-1000) > 5 {
		t.Errorf("the prompt ends on %.1f Hz, want the 1 kHz beep", f)
	}
}
