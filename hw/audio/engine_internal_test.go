package audio

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

func tonePackets(t testing.TB, freq float64, n int, fec bool) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(opus.EncoderConfig{FEC: fec, PacketLossPercent: 10 * b2i(fec)})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	tone := audiotest.Tone{Freq: freq, Amp: 0.3}
	pcm := make([]int16, FrameSamples)
	out := make([][]byte, n)
	for i := range out {
		tone.Read(pcm)
		buf := make([]byte, opus.MaxPacketSize)
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = buf[:m]
	}
	return out
}

func testParty(t testing.TB) *Party {
	t.Helper()
	cfg := Config{Backend: BackendNull}
	cfg.setDefaults()
	p, err := newParty("p", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.free)
	return p
}

// playThrough pushes packets per schedule (schedule[k] lists the packet
// indexes pushed before render k) and returns the rendered output with the
// leading all-silent frames removed.
func playThrough(p *Party, pkts [][]byte, schedule [][]int, frames int) []int16 {
	var out []int16
	frame := make([]int16, FrameSamples)
	started := false
	for k := 0; k < frames; k++ {
		if k < len(schedule) {
			for _, i := range schedule[k] {
				p.Push(uint16(1000+i), uint32(i*FrameSamples), pkts[i])
			}
		}
		p.render(frame)
		if !started && audiotest.RMS(frame) == 0 {
			continue
		}
		started = true
		out = append(out, frame...)
	}
	return out
}

func decodeInOrder(t *testing.T, pkts [][]byte) []int16 {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []int16
	pcm := make([]int16, FrameSamples)
	for _, pk := range pkts {
		n, err := dec.Decode(pk, pcm)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pcm[:n]...)
	}
	return out
}

func TestPartyPlaysReorderedPacketsInOrder(t *testing.T) {
	pkts := tonePackets(t, 440, 40, false)
	var schedule [][]int
	for i := 0; i < 40; i += 2 {
		schedule = append(schedule, []int{i + 1}, []int{i}) // every pair swapped
	}
	p := testParty(t)
	got := playThrough(p, pkts, schedule, 40)
	want := decodeInOrder(t, pkts)
	n := min(len(got), len(want))
	if n < 30*FrameSamples {
		t.Fatalf("only %d frames played", n/FrameSamples)
	}
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			t.Fatalf("sample %d (frame %d) = %d, want %d: not the in-order decoding", i, i/FrameSamples, got[i], want[i])
		}
	}
	if st := p.Stats(); st.Jitter.Lost != 0 || st.Jitter.Late != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPartyConcealsALostPacket(t *testing.T) {
	for _, fec := range []bool{false, true} {
		pkts := tonePackets(t, 440, 40, fec)
		var schedule [][]int
		for i := 0; i < 40; i++ {
			if i == 20 {
				schedule = append(schedule, nil) // lost
				continue
			}
			schedule = append(schedule, []int{i})
		}
		p := testParty(t)
		got := playThrough(p, pkts, schedule, 40)
		if len(got) < 30*FrameSamples {
			t.Fatalf("fec %v: only %d frames played", fec, len(got)/FrameSamples)
		}
		// No silence longer than 2 ms: the 20 ms gap is filled.
		if s := LongestSilenceAround(got); s > SampleRate/500 {
			t.Fatalf("fec %v: %d samples of silence around the loss", fec, s)
		}
		lostFrame := got[20*FrameSamples : 21*FrameSamples] // leading silence is stripped: frame i is packet i
		if f := audiotest.DominantFrequency(lostFrame, SampleRate); math.Abs(f-440) > 20 {
			t.Fatalf("fec %v: concealed audio at %.0f Hz", fec, f)
		}
		st := p.Stats()
		if st.Jitter.Lost != 1 || st.FECDecodes != 1 || st.DecodeErrors != 0 {
			t.Fatalf("fec %v: stats %+v", fec, st)
		}
	}
}

// LongestSilenceAround is the longest near-silent run of a -10 dBFS tone.
func LongestSilenceAround(s []int16) int { return audiotest.LongestSilence(s, 50) }

func TestToneCadencesOffline(t *testing.T) {
	for _, tc := range []struct {
		tone Tone
		freq float64
		want []int // on, off, on, off ... in ms, two periods
	}{
		{ToneRingback, 425, []int{1000, 4000, 1000, 4000}},
		{ToneRingtone, 800, []int{400, 200, 400, 2000, 400, 200, 400, 2000}},
		{ToneBusy, 425, []int{500, 500, 500, 500}},
	} {
		var g toneGen
		g.start(tc.tone)
		total := 0
		for _, ms := range tc.want {
			total += ms
		}
		acc := make([]int32, total*SampleRate/1000)
		for i := 0; i < len(acc); i += FrameSamples {
			g.add(acc[i : i+FrameSamples])
		}
		pos := 0
		for k, ms := range tc.want {
			seg := acc[pos : pos+ms*SampleRate/1000]
			pcm := make([]int16, len(seg))
			for i, v := range seg {
				pcm[i] = int16(v)
			}
			pos += len(seg)
			rms := audiotest.RMS(pcm)
			if k%2 == 1 {
				if rms != 0 {
					t.Fatalf("%v: pause %d not silent (RMS %v)", tc.tone, k, rms)
				}
				continue
			}
			if rms < 0.2 {
				t.Fatalf("%v: burst %d RMS %v", tc.tone, k, rms)
			}
			if f := audiotest.DominantFrequency(pcm, SampleRate); math.Abs(f-tc.freq) > 3 {
				t.Fatalf("%v: burst %d at %.1f Hz, want %v", tc.tone, k, f, tc.freq)
			}
			// Ramped edges: no click at the start.
			if pcm[0] != 0 || math.Abs(float64(pcm[len(pcm)-1])) > 2000 {
				t.Fatalf("%v: burst %d edges %d..%d", tc.tone, k, pcm[0], pcm[len(pcm)-1])
			}
		}
	}
}

func TestRingWraps(t *testing.T) {
	q := newRing(8)
	out := make([]int16, 8)
	for round := 0; round < 10; round++ {
		in := []int16{int16(round), 1, 2, 3, 4}
		if n := q.Write(in); n != 5 {
			t.Fatalf("write %d", n)
		}
		if n := q.Write(in); n != 3 {
			t.Fatalf("overfull write took %d, want 3", n)
		}
		if n := q.Read(out); n != 8 || out[0] != int16(round) || out[5] != int16(round) || out[7] != 2 {
			t.Fatalf("read %d %v", n, out)
		}
		if q.Len() != 0 {
			t.Fatalf("len %d", q.Len())
		}
	}
}

func TestLimiter(t *testing.T) {
	var l limiter
	acc := make([]int32, FrameSamples)
	out := make([]int16, FrameSamples)
	for i := range acc {
		acc[i] = int32(80000 * math.Sin(float64(i)*0.1))
	}
	l.apply(acc, out, 1)
	for i, s := range out {
		if (acc[i] > 0) != (s > 0) && s != 0 {
			t.Fatalf("sample %d wrapped: %d -> %d", i, acc[i], s)
		}
	}
	if l.gain > 0.42 {
		t.Fatalf("gain %v after an 80000 peak", l.gain)
	}
	// Quiet input: the gain recovers to 1 within about 1 s (50 frames × 2%).
	for i := range acc {
		acc[i] /= 100
	}
	for range 60 {
		l.apply(acc, out, 1)
	}
	if l.gain != 1 {
		t.Fatalf("gain %v after quiet input, want 1", l.gain)
	}
}

func TestDeviceLossIsReported(t *testing.T) {
	e, err := New(Config{Backend: BackendNull})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.onStop() // what miniaudio does when the backend stops the device
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("engine kept running after losing its device")
	}
	if err := e.Err(); !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("Err() = %v, want ErrDeviceLost", err)
	}
}

func TestCallbackAndProcessingDoNotAllocate(t *testing.T) {
	e, err := New(Config{Backend: BackendNull})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := make([]int16, 480)
	out := make([]int16, 480)
	if a := testing.AllocsPerRun(200, func() { e.feed.data(out, in) }); a != 0 {
		t.Fatalf("device callback allocates %v times per call", a)
	}

	var parties []*Party
	for _, id := range []string{"a", "b", "c", "d"} {
		p, err := e.AddParty(id)
		if err != nil {
			t.Fatal(err)
		}
		parties = append(parties, p)
	}
	if err := e.Ring(ToneRingtone); err != nil {
		t.Fatal(err)
	}
	pkts := tonePackets(t, 440, 50, false)
	seq := 0
	step := func() {
		for _, p := range parties {
			p.Push(uint16(seq), uint32(seq*FrameSamples), pkts[seq%len(pkts)])
		}
		seq++
		e.playRing.Read(e.scratch) // keep the speaker queue from filling
		e.process()
	}
	for range 20 {
		step() // warm up: jitter buffers start playing
	}
	if a := testing.AllocsPerRun(200, step); a != 0 {
		t.Fatalf("processing a frame with 4 parties allocates %v times", a)
	}
}

// BenchmarkProcess4Parties measures one 20 ms frame of the processing loop:
// 4 parties decoded and mixed with a tone, the microphone encoded.
func BenchmarkProcess4Parties(b *testing.B) {
	e, err := New(Config{Backend: BackendNull, Source: &audiotest.Tone{Freq: 440, Amp: 0.3}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	e.OnEncoded(func(Frame) {})
	var parties []*Party
	for _, id := range []string{"a", "b", "c", "d"} {
		p, _ := e.AddParty(id)
		parties = append(parties, p)
	}
	pkts := tonePackets(b, 440, 50, false)
	seq := 0
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range parties {
			p.Push(uint16(seq), uint32(seq*FrameSamples), pkts[seq%len(pkts)])
		}
		seq++
		e.playRing.Read(e.scratch)
		e.process()
	}
}

// BenchmarkMix4Parties measures summing 4 decoded frames and a tone, volume
// and limiter: the mixer alone.
func BenchmarkMix4Parties(b *testing.B) {
	frames := make([][]int16, 4)
	for i := range frames {
		frames[i] = audiotest.Sine(float64(300+100*i), 0.3, SampleRate, FrameSamples)
	}
	acc := make([]int32, FrameSamples)
	out := make([]int16, FrameSamples)
	var g toneGen
	g.start(ToneRingback)
	var l limiter
	b.ReportAllocs()
	for b.Loop() {
		clear(acc)
		for _, f := range frames {
			for i, s := range f {
				acc[i] += int32(s)
			}
		}
		g.add(acc)
		l.apply(acc, out, 0.8)
	}
}

func TestStalledDeviceIsReported(t *testing.T) {
	e, err := New(Config{Backend: BackendNull, StallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Ring(ToneRingtone); err != nil { // busy: the engine does not pause on its own
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if e.Stats().Frames == 0 {
		t.Fatal("the device delivered no frame")
	}
	// A device that goes silent without telling: callbacks stop, no stop
	// callback comes.
	e.stopping.Store(true)
	if err := e.dev.dev.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("engine kept running on a silent device")
	}
	if err := e.Err(); !errors.Is(err, ErrDeviceStalled) {
		t.Fatalf("Err() = %v, want ErrDeviceStalled", err)
	}
}
