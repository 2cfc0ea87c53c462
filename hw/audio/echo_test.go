package audio_test

import (
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// echoPath is a room: what the engine plays (its Sink) comes back into its
// microphone (its Source) delay later and gain weaker, plus a near-end
// voice. The engine calls Read and Write from its processing goroutine.
type echoPath struct {
	mu     sync.Mutex
	played []int16 // everything played, from the start
	read   int     // microphone samples produced
	delay  int
	gain   float64
	near   []int16
	echo   []int16 // the echo alone, for the measurement
	mic    []int16 // what the microphone heard
}

func (p *echoPath) Write(s []int16) {
	p.mu.Lock()
	p.played = append(p.played, s...)
	p.mu.Unlock()
}

func (p *echoPath) Read(s []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range s {
		t := p.read + i
		e := 0.0
		if k := t - p.delay; k >= 0 && k < len(p.played) {
			e = p.gain * float64(p.played[k])
		}
		n := 0.0
		if p.near != nil {
			n = float64(p.near[t%len(p.near)])
		}
		p.echo = append(p.echo, int16(e))
		s[i] = int16(max(-32768, min(32767, e+n)))
		p.mic = append(p.mic, s[i])
	}
	p.read += len(s)
}

// encodeVoice returns 20 ms Opus packets of audiotest.Voice.
func encodeVoice(t *testing.T, seconds int) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(opus.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	v := audiotest.Voice(seconds*audio.SampleRate, 3)
	var out [][]byte
	for i := 0; i+audio.FrameSamples <= len(v); i += audio.FrameSamples {
		buf := make([]byte, opus.MaxPacketSize)
		n, err := enc.Encode(v[i:i+audio.FrameSamples], buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n])
	}
	return out
}

// callWithEcho runs a call of seconds through the engine in a room: a far-end
// party talks, its voice plays and comes back into the microphone 70 ms
// later at half amplitude (beyond the 50 ms the engine queues for the
// speaker, so the reference never comes late). It returns the room and what
// the engine encoded, decoded.
func callWithEcho(t *testing.T, cancel bool, near []int16, seconds int) (*echoPath, []int16) {
	t.Helper()
	if os.Getenv("INTERCOMD_VM_GUEST") != "" {
		// The package's kernel tests run in the emulated guest, where echo
		// cancellation in real time runs late; these calls need no kernel
		// and run in the unit tier.
		t.Skip("a real-time call on the null device: run on the host, not under emulation")
	}
	ctx := testCtx(t)
	room := &echoPath{delay: 70 * audio.SampleRate / 1000, gain: 0.5, near: near}
	e := startNull(t, audio.Config{Source: room, Sink: room, EchoCancel: cancel})
	far, err := e.AddParty("far")
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{parties: []*audio.Party{far}, packets: [][][]byte{encodeVoice(t, seconds)}}
	var sink frameSink
	e.OnEncoded(func(fr audio.Frame) { f.tick(fr); sink.add(fr) })
	frames := sink.wait(ctx, t, seconds*50)
	return room, decodeFrames(t, frames)
}

// erle is the echo return loss enhancement over the last 3 s: the echo in
// the microphone against what was sent, in dB.
func erle(room *echoPath, sent []int16) float64 {
	room.mu.Lock()
	defer room.mu.Unlock()
	n := min(len(sent), len(room.echo))
	from := n - 3*audio.SampleRate
	return 10 * math.Log10(audiotest.Energy(room.echo[from:n])/max(audiotest.Energy(sent[from:n]), 1))
}

func TestEchoCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s call in real time")
	}
	const seconds = 10
	room, sent := callWithEcho(t, true, nil, seconds)
	got := erle(room, sent)
	t.Logf("echo return loss enhancement: %.1f dB", got)
	if got < 20 {
		t.Fatalf("ERLE %.1f dB, want at least 20", got)
	}
	// Without cancellation the echo goes out as it came in.
	room, sent = callWithEcho(t, false, nil, 4)
	if off := erle(room, sent); off > 3 {
		t.Fatalf("ERLE %.1f dB without echo cancellation: the measurement is wrong", off)
	}
}

func TestNearEndVoiceSurvivesEchoCancellation(t *testing.T) {
	if testing.Short() {
		t.Skip("an 8 s call in real time")
	}
	near := audiotest.Voice(4*audio.SampleRate, 11)
	for i := range near {
		near[i] /= 2
	}
	const seconds = 8
	_, sent := callWithEcho(t, true, near, seconds)
	// Compare the last 3 s sent with the near-end voice alone at the same
	// time, from the microphone's clock (sent lags the microphone by the
	// encoder's lookahead, which energy over seconds does not notice).
	n := len(sent)
	from := n - 3*audio.SampleRate
	var want []int16
	for t := from; t < n; t++ {
		want = append(want, near[t%len(near)])
	}
	ratio := 10 * math.Log10(audiotest.Energy(sent[from:n])/audiotest.Energy(want))
	t.Logf("near-end voice after cancellation, during double talk: %+.1f dB", ratio)
	if ratio < -6 || ratio > 3 {
		t.Fatalf("near end %+.1f dB after cancellation, want within -6..+3 dB", ratio)
	}
}

func TestEchoConfigChecked(t *testing.T) {
	for _, c := range []audio.Config{
		{Backend: audio.BackendNull, EchoCancel: true, EchoTail: time.Millisecond},
		{Backend: audio.BackendNull, EchoCancel: true, EchoTail: 2 * time.Second},
		{Backend: audio.BackendNull, EchoCancel: true, EchoDelay: -time.Millisecond},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
