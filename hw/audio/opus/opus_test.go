package opus

import (
	"errors"
	"math"
	"testing"

	"github.com/intercomd/intercomd/hw/audio/audiotest"
)

const frame = 960 // 20 ms at 48 kHz

func encodeTone(t testing.TB, freq float64, frames int) [][]byte {
	t.Helper()
	enc, err := NewEncoder(EncoderConfig{Bitrate: 32000})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	tone := audiotest.Tone{Freq: freq, Amp: 0.5}
	pcm := make([]int16, frame)
	var pkts [][]byte
	for i := 0; i < frames; i++ {
		tone.Read(pcm)
		buf := make([]byte, MaxPacketSize)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, buf[:n])
	}
	return pkts
}

func TestRoundTripKeepsFrequency(t *testing.T) {
	t.Logf("linked %s", Version())
	pkts := encodeTone(t, 440, 50)
	dec := newDecoder(t)
	var out []int16
	pcm := make([]int16, 5760)
	for _, p := range pkts {
		if d, err := PacketSamples(p, 48000); err != nil || d != frame {
			t.Fatalf("packet duration %d, %v", d, err)
		}
		n, err := dec.Decode(p, pcm)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pcm[:n]...)
	}
	if got := audiotest.DominantFrequency(out[4800:], 48000); math.Abs(got-440) > 10 {
		t.Fatalf("decoded dominant frequency %.1f, want 440", got)
	}
	if rms := audiotest.RMS(out[4800:]); rms < 0.25 || rms > 0.45 {
		t.Fatalf("decoded RMS %.3f, want about 0.35", rms)
	}
}

// newDecoder returns a 48 kHz mono decoder closed when tb ends.
func newDecoder(tb testing.TB) *Decoder {
	tb.Helper()
	dec, err := NewDecoder(48000, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dec.Close() })
	return dec
}

func TestConcealmentFillsLoss(t *testing.T) {
	pkts := encodeTone(t, 440, 30)
	dec := newDecoder(t)
	pcm := make([]int16, frame)
	for _, p := range pkts[:20] {
		if _, err := dec.Decode(p, pcm); err != nil {
			t.Fatal(err)
		}
	}
	n, err := dec.Conceal(pcm)
	if err != nil || n != frame {
		t.Fatalf("conceal: %d, %v", n, err)
	}
	if s := audiotest.LongestSilence(pcm, 300); s > 96 {
		t.Fatalf("concealed frame has %d silent samples", s)
	}
	if got := audiotest.DominantFrequency(pcm, 48000); math.Abs(got-440) > 15 {
		t.Fatalf("concealed frame at %.1f Hz, want about 440", got)
	}
	// FEC decoding without FEC data falls back to concealment.
	if n, err := dec.DecodeFEC(pkts[21], pcm); err != nil || n != frame {
		t.Fatalf("decode fec: %d, %v", n, err)
	}
}

func TestErrors(t *testing.T) {
	if _, err := NewEncoder(EncoderConfig{Bitrate: 1}); err == nil {
		t.Fatal("bitrate 1 accepted")
	}
	if _, err := NewDecoder(44100, 1); err == nil {
		t.Fatal("44100 Hz decoder accepted")
	}
	enc, err := NewEncoder(EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(make([]int16, 100), make([]byte, MaxPacketSize)); err == nil {
		t.Fatal("encoding a 100-sample frame succeeded")
	}
	enc.Close()
	enc.Close()
	if _, err := enc.Encode(make([]int16, frame), make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("encode after close: %v", err)
	}
	dec := newDecoder(t)
	if _, err := dec.Decode([]byte{0xff, 0xff, 0xff}, make([]int16, frame)); err == nil {
		t.Fatal("garbage packet decoded")
	}
}

func BenchmarkEncode20ms(b *testing.B) {
	enc, err := NewEncoder(EncoderConfig{Bitrate: 32000})
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	pcm := audiotest.Sine(440, 0.5, 48000, frame)
	out := make([]byte, MaxPacketSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(pcm, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode20ms(b *testing.B) {
	pkts := encodeTone(b, 440, 50)
	dec := newDecoder(b)
	pcm := make([]int16, frame)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := dec.Decode(pkts[i%len(pkts)], pcm); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkConceal20ms(b *testing.B) {
	pkts := encodeTone(b, 440, 50)
	dec := newDecoder(b)
	pcm := make([]int16, frame)
	for _, p := range pkts {
		dec.Decode(p, pcm)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Conceal(pcm); err != nil {
			b.Fatal(err)
		}
	}
}
