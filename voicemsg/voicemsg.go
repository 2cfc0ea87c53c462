// Package voicemsg records a visitor's voice message at the door station:
// it plays a greeting through the speaker, then records the microphone
// into Ogg Opus until the message is long enough, the visitor falls
// silent, or the caller stops it (a new ring: the doorbell always wins).
//
// It sits between the audio engine (hw/audio: Play and OnCapture, behind
// the narrow Audio interface) and the visitor log, which keeps the Ogg
// stream with the ring's entry; cmd/intercomd starts a recording when a
// ring ends unanswered. Record runs on its caller's goroutine and encodes
// there, with an Opus encoder of its own (a message is compressed harder
// than a call: 16 kbit/s); the engine's processing goroutine only copies
// each microphone frame into a channel, never waiting. One recording at a
// time per Audio: OnCapture has one consumer.
package voicemsg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// Audio is what a recording needs of the audio engine (*audio.Engine):
// PCM at audio.SampleRate, mono.
type Audio interface {
	// Play plays pcm once through the speaker and returns when it is
	// queued, or with ctx's error.
	Play(ctx context.Context, pcm []int16) error
	// OnCapture sets the consumer of each microphone frame (nil: none); it
	// runs on the engine's goroutine, must not block or retain p.
	OnCapture(fn func(p []int16))
}

// Config configures a recording. Zero fields take the defaults noted.
type Config struct {
	// Greeting is played before the recording; nil plays Prompt.
	Greeting []int16
	// MaxDuration bounds the message; required.
	MaxDuration time.Duration
	// Silence stops the recording once the microphone has been silent
	// this long (from the start too: a visitor who walked away); 0 never.
	Silence time.Duration
	// Bitrate of the Opus stream; default 16000 bits a second.
	Bitrate int
	// Complexity of the Opus encoder, 1..10; default 0 is libopus' own.
	Complexity int
	// MicTimeout: no frame from the microphone for this long is a
	// failure (ErrNoAudio); default 2 s.
	MicTimeout time.Duration
	// OnRecording, when set, is called once the greeting has played, as
	// the recording begins (on Record's goroutine).
	OnRecording func()
}

// Message is a recorded voice message.
type Message struct {
	// Ogg is the message, Ogg Opus (RFC 7845), mono, 48 kHz.
	Ogg []byte
	// Duration is its length.
	Duration time.Duration
	// Dropped counts the microphone frames lost because encoding fell
	// behind (left out of the message).
	Dropped int
}

// Errors of Record: no message was recorded.
var (
	// ErrStopped: ctx ended during the greeting.
	ErrStopped = errors.New("voicemsg: stopped before the recording began")
	// ErrSilent: the microphone heard nothing but silence.
	ErrSilent = errors.New("voicemsg: nothing but silence")
	// ErrNoAudio: the microphone delivered no audio (a failing device).
	ErrNoAudio = errors.New("voicemsg: no audio from the microphone")
)

const (
	// silenceRMS is the level below which a frame is silence: -50 dBFS.
	silenceRMS = 0.00316
	// settleFrames of capture are skipped after the greeting: the speaker
	// queue still plays its end then.
	settleFrames = 5
	// tailFrames of silence are kept after the last sound (a message
	// stopped by silence does not keep all of it).
	tailFrames = 25
	// queueFrames of microphone wait for the encoder at most.
	queueFrames = 50
)

// Record plays the greeting, then records the microphone until
// cfg.MaxDuration, cfg.Silence of silence, or ctx ends (the message so far
// is kept). It returns the message, or ErrStopped, ErrSilent, ErrNoAudio or
// the greeting's or the encoder's error.
func Record(ctx context.Context, a Audio, cfg Config) (Message, error) {
	if cfg.MaxDuration <= 0 {
		return Message{}, errors.New("voicemsg: MaxDuration must be positive")
	}
	if cfg.Greeting == nil {
		cfg.Greeting = Prompt()
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 16000
	}
	if cfg.MicTimeout == 0 {
		cfg.MicTimeout = 2 * time.Second
	}
	tk, err := newTake(cfg)
	if err != nil {
		return Message{}, err
	}
	defer tk.close()

	if err := a.Play(ctx, cfg.Greeting); err != nil {
		if ctx.Err() != nil {
			return Message{}, ErrStopped
		}
		return Message{}, fmt.Errorf("voicemsg: greeting: %w", err)
	}

	if cfg.OnRecording != nil {
		cfg.OnRecording()
	}
	frames := make(chan []int16, queueFrames)
	var dropped atomic.Int64
	a.OnCapture(func(p []int16) {
		select {
		case frames <- append([]int16(nil), p...):
		default:
			dropped.Add(1)
		}
	})
	stall := time.NewTimer(cfg.MicTimeout)
	defer stall.Stop()
	skip := settleFrames
	var failure error
loop:
	for !tk.done() {
		var p []int16
		select {
		case <-ctx.Done():
			break loop
		case <-stall.C:
			failure = fmt.Errorf("%w for %v", ErrNoAudio, cfg.MicTimeout)
			break loop
		case p = <-frames:
			stall.Reset(cfg.MicTimeout)
		}
		if skip > 0 {
			skip--
			continue
		}
		if failure = tk.add(p); failure != nil {
			break
		}
	}
	a.OnCapture(nil)
	if failure != nil {
		return Message{}, failure
	}
	m, err := tk.message()
	m.Dropped = int(dropped.Load())
	return m, err
}

// take is one recording's encoding: the Opus packets so far and where the
// sound ended. Not safe for concurrent use.
type take struct {
	enc        *opus.Encoder
	buf        []byte
	packets    [][]byte
	lastSound  int // packets up to the last frame with sound
	heard      bool
	maxFrames  int
	quietLimit int // frames of silence that end it; 0 never
}

func newTake(cfg Config) (*take, error) {
	enc, err := opus.NewEncoder(opus.EncoderConfig{Bitrate: cfg.Bitrate, Complexity: cfg.Complexity})
	if err != nil {
		return nil, fmt.Errorf("voicemsg: %w", err)
	}
	return &take{enc: enc, buf: make([]byte, opus.MaxPacketSize),
		maxFrames: int(cfg.MaxDuration / audio.FrameDuration), quietLimit: int(cfg.Silence / audio.FrameDuration)}, nil
}

func (t *take) close() { t.enc.Close() }

// done reports whether the take is over: long enough, or silent long
// enough.
func (t *take) done() bool {
	return len(t.packets) >= t.maxFrames || (t.quietLimit > 0 && len(t.packets)-t.lastSound >= t.quietLimit)
}

// add encodes one frame of the microphone.
func (t *take) add(p []int16) error {
	n, err := t.enc.Encode(p, t.buf)
	if err != nil {
		return fmt.Errorf("voicemsg: encode: %w", err)
	}
	t.packets = append(t.packets, append([]byte(nil), t.buf[:n]...))
	if rms(p) >= silenceRMS {
		t.heard, t.lastSound = true, len(t.packets)
	}
	return nil
}

// message is the take in Ogg, with at most tailFrames of the silence after
// the last sound; ErrSilent when there was none.
func (t *take) message() (Message, error) {
	if !t.heard {
		return Message{}, ErrSilent
	}
	packets := t.packets[:min(len(t.packets), t.lastSound+tailFrames)]
	ogg, err := writeOgg(rand.Uint32(), packets, audio.FrameSamples)
	if err != nil {
		return Message{}, err
	}
	return Message{Ogg: ogg, Duration: time.Duration(len(packets)) * audio.FrameDuration}, nil
}

// rms is the root mean square of p in units of full scale.
func rms(p []int16) float64 {
	var sum float64
	for _, s := range p {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum/float64(max(1, len(p)))) / 32768
}
