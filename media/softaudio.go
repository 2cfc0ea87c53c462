package media

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/audio/jitter"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// Soft audio stream format: 48 kHz mono, 20 ms Opus frames, as the device's
// engine.
const (
	softRate    = 48000
	softFrame   = 20 * time.Millisecond
	softSamples = softRate / 50
)

// MicSource replaces a microphone: Read fills p entirely. It is called on the
// engine's goroutine and must not block (audiotest.Tone is one).
type MicSource interface {
	Read(p []int16)
}

// SoftAudioConfig configures a SoftAudio.
type SoftAudioConfig struct {
	// Mic supplies the microphone's samples; nil sends a sine of MicTone Hz,
	// or silence when MicTone is 0.
	Mic     MicSource
	MicTone float64
	// Bitrate of the Opus encoder; default 32000.
	Bitrate int
	// JitterTarget is each party's playout delay; default 60 ms.
	JitterTarget time.Duration
	// OnParty receives every 20 ms frame decoded for a party (concealment
	// and silence included), on the engine's goroutine; it must not block
	// or retain pcm.
	OnParty func(user string, pcm []int16)
}

// SoftAudio is an Audio engine without a sound device, for the softphone and
// tests: a timer paces it at real time, the microphone is a MicSource, and
// each party's decoded audio goes to OnParty instead of a speaker. It uses
// the same Opus binding and jitter buffer as the device's engine.
//
// Its methods are safe for concurrent use. Close stops the engine's
// goroutine and waits for it.
type SoftAudio struct {
	cfg  SoftAudioConfig
	enc  *opus.Encoder
	stop chan struct{}
	done chan struct{}
	once sync.Once

	muted     atomic.Bool
	handsFree atomic.Bool
	tone      atomic.Int32
	micLevel  atomic.Int32
	frames    atomic.Uint64

	mu      sync.Mutex
	out     func([]byte, time.Duration)
	parties map[*softParty]struct{}
}

// NewSoftAudio starts a SoftAudio.
func NewSoftAudio(cfg SoftAudioConfig) (*SoftAudio, error) {
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 32000
	}
	if cfg.JitterTarget == 0 {
		cfg.JitterTarget = 60 * time.Millisecond
	}
	if cfg.Mic == nil && cfg.MicTone > 0 {
		cfg.Mic = &audiotest.Tone{Freq: cfg.MicTone, Amp: 0.3, Rate: softRate}
	}
	enc, err := opus.NewEncoder(opus.EncoderConfig{SampleRate: softRate, Channels: 1, Bitrate: cfg.Bitrate})
	if err != nil {
		return nil, fmt.Errorf("soft audio: %w", err)
	}
	s := &SoftAudio{
		cfg:     cfg,
		enc:     enc,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		parties: map[*softParty]struct{}{},
	}
	go s.run()
	return s, nil
}

// Close stops the engine and frees its codecs. It is idempotent.
func (s *SoftAudio) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.enc.Close()
		s.mu.Lock()
		for p := range s.parties {
			p.free()
		}
		clear(s.parties)
		s.mu.Unlock()
	})
	return nil
}

// SetMicOutput implements Audio.
func (s *SoftAudio) SetMicOutput(out func([]byte, time.Duration)) {
	s.mu.Lock()
	s.out = out
	s.mu.Unlock()
}

// AddParty implements Audio.
func (s *SoftAudio) AddParty(user string) (AudioParty, error) {
	dec, err := opus.NewDecoder(softRate, 1)
	if err != nil {
		return nil, fmt.Errorf("party %s: %w", user, err)
	}
	target := int((s.cfg.JitterTarget + softFrame - 1) / softFrame)
	p := &softParty{user: user, dec: dec, jb: jitter.New(jitter.Config{Target: target}), pkt: make([]byte, 1500)}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		dec.Close()
		return nil, errors.New("soft audio closed")
	default:
	}
	s.parties[p] = struct{}{}
	return p, nil
}

// Ring implements Audio; the tone is only recorded (see Tone).
func (s *SoftAudio) Ring(t calling.Tone) { s.tone.Store(int32(t)) }

// Tone returns the tone last asked for.
func (s *SoftAudio) Tone() calling.Tone { return calling.Tone(s.tone.Load()) }

// SetMicMute implements Audio.
func (s *SoftAudio) SetMicMute(m bool) { s.muted.Store(m) }

// Muted reports whether the microphone is muted.
func (s *SoftAudio) Muted() bool { return s.muted.Load() }

// SetHandsFree implements Audio; it is only recorded.
func (s *SoftAudio) SetHandsFree(on bool) { s.handsFree.Store(on) }

// MicLevel implements Audio.
func (s *SoftAudio) MicLevel() int { return int(s.micLevel.Load()) }

// Frames counts the 20 ms frames processed.
func (s *SoftAudio) Frames() uint64 { return s.frames.Load() }

func (s *SoftAudio) run() {
	defer close(s.done)
	mic := make([]int16, softSamples)
	pcm := make([]int16, softSamples)
	pkt := make([]byte, opus.MaxPacketSize)
	var micMeter audio.Meter
	start := time.Now()
	n := 0
	t := time.NewTimer(softFrame)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		due := int(time.Since(start) / softFrame)
		if due-n > 10 { // the machine stalled: skip rather than burst
			n = due - 1
		}
		for ; n < due; n++ {
			s.frame(mic, pcm, pkt, &micMeter)
		}
		t.Reset(time.Until(start.Add(time.Duration(n+1) * softFrame)))
	}
}

// frame processes one 20 ms frame: microphone to Opus, parties to OnParty.
func (s *SoftAudio) frame(mic, pcm []int16, pkt []byte, m *audio.Meter) {
	s.frames.Add(1)
	if s.cfg.Mic != nil {
		s.cfg.Mic.Read(mic)
	} else {
		clear(mic)
	}
	if s.muted.Load() {
		clear(mic)
	}
	if m.Add(mic) {
		s.micLevel.Store(int32(m.Level()))
	}
	s.mu.Lock()
	out := s.out
	parties := make([]*softParty, 0, len(s.parties))
	for p := range s.parties {
		if p.closed.Load() {
			delete(s.parties, p)
			p.free()
			continue
		}
		parties = append(parties, p)
	}
	s.mu.Unlock()
	if out != nil {
		if k, err := s.enc.Encode(mic, pkt); err == nil && k > 0 {
			out(pkt[:k], softFrame)
		}
	}
	for _, p := range parties {
		p.render(pcm)
		if s.cfg.OnParty != nil {
			s.cfg.OnParty(p.user, pcm)
		}
	}
}

type softParty struct {
	user   string
	jb     *jitter.Buffer
	closed atomic.Bool
	level  atomic.Int32

	// engine goroutine only
	dec   *opus.Decoder
	pkt   []byte
	meter audio.Meter
	freed bool
}

func (p *softParty) Push(seq uint16, ts uint32, payload []byte) {
	if !p.closed.Load() {
		p.jb.Push(seq, ts, payload)
	}
}

func (p *softParty) Level() int { return int(p.level.Load()) }
func (p *softParty) Close()     { p.closed.Store(true) }

func (p *softParty) free() {
	if !p.freed {
		p.freed = true
		p.dec.Close()
	}
}

// render decodes the party's next 20 ms into pcm.
func (p *softParty) render(pcm []int16) {
	o := p.jb.Pop(p.pkt)
	var err error
	switch o.Kind {
	case jitter.KindPacket:
		_, err = p.dec.Decode(o.Payload, pcm)
	case jitter.KindLost:
		if len(o.Payload) > 0 {
			_, err = p.dec.DecodeFEC(o.Payload, pcm)
		} else {
			_, err = p.dec.Conceal(pcm)
		}
	default:
		clear(pcm)
	}
	if err != nil {
		clear(pcm)
	}
	if p.meter.Add(pcm) {
		p.level.Store(int32(p.meter.Level()))
	}
}
