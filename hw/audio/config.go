package audio

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Stream format: fixed for the whole engine.
const (
	SampleRate    = 48000                 // samples per second
	Channels      = 1                     // mono
	FrameDuration = 20 * time.Millisecond // one Opus frame
	FrameSamples  = SampleRate / 50       // samples per frame
)

// Backend selects the audio system the device is opened through.
type Backend int

// Backends. The zero value, BackendAuto, tries ALSA then PulseAudio; it never
// falls back to the null backend by itself (see Config.NullFallback).
const (
	BackendAuto Backend = iota
	BackendALSA
	BackendPulse
	// BackendNull is miniaudio's null device: no sound, but it runs in real
	// time on its own clock. For tests and machines without a sound card.
	BackendNull
)

func (b Backend) String() string {
	switch b {
	case BackendAuto:
		return "auto"
	case BackendALSA:
		return "alsa"
	case BackendPulse:
		return "pulse"
	case BackendNull:
		return "null"
	default:
		return fmt.Sprintf("Backend(%d)", int(b))
	}
}

// ParseBackend parses "auto", "alsa", "pulse" or "null".
func ParseBackend(s string) (Backend, error) {
	for _, b := range []Backend{BackendAuto, BackendALSA, BackendPulse, BackendNull} {
		if strings.EqualFold(s, b.String()) {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown audio backend %q (want auto, alsa, pulse or null)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (b Backend) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Backend) UnmarshalText(text []byte) error {
	v, err := ParseBackend(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Source replaces the microphone (a test hook): Read must fill p entirely.
// It is called on the engine's processing goroutine and must not block.
type Source interface {
	Read(p []int16)
}

// Sink receives a copy of every frame sent to the speaker (a test hook). It
// is called on the engine's processing goroutine, must not block and must
// not retain p.
type Sink interface {
	Write(p []int16)
}

// Config configures an Engine. Zero fields take the defaults set by
// (*Config).setDefaults and documented per field.
type Config struct {
	Backend Backend
	// Playback and Capture select the devices. Each is matched, without
	// regard to case, as a substring of the backend's device names and IDs;
	// exactly one device must match. With ALSA a PCM name (anything
	// containing ':', such as "hw:Loopback,0,0", "plughw:CARD=Device,DEV=0",
	// or the word "default") is opened as given. Required unless Backend is
	// BackendNull, where they are ignored.
	Playback string
	Capture  string
	// NullFallback makes New open the null backend, and log a warning, when
	// the configured device cannot be opened because there is no sound
	// hardware or no matching device (errors matching ErrNoDevice).
	NullFallback bool

	Bitrate    int  // Opus bits per second; default 32000
	Complexity int  // Opus complexity 1..10; default 0 is libopus' own (highest)
	FEC        bool // Opus in-band forward error correction in what is sent

	// JitterTarget is the playout delay the receive buffers aim for; default
	// 60 ms. JitterMax bounds what a buffer holds; default 320 ms.
	JitterTarget time.Duration
	JitterMax    time.Duration

	// Period is the device period, up to 100 ms; default 10 ms. The device
	// buffers three periods. The speaker queue is primed with one period
	// plus two frames of silence, which adds to the playback latency: raise
	// it only for slow machines or emulators.
	Period time.Duration

	// EchoCancel removes the speaker's echo from the microphone (SpeexDSP's
	// echo canceller and residual echo suppression, package aec) before it
	// is encoded. The reference is what the engine played, delayed by the
	// speaker queue and EchoDelay; the filter finds the echo up to EchoTail
	// later (default 200 ms). EchoDelay (0..1s) is latency of the sound
	// card beyond that tail: a board whose playback reaches the microphone
	// 370 ms late needs about 300 ms here. It has no effect on the null
	// backend without a Source, whose microphone hears nothing.
	EchoCancel bool
	EchoTail   time.Duration
	EchoDelay  time.Duration

	// StallTimeout is how long the device may deliver nothing before the
	// engine gives up with ErrDeviceStalled; default 3 s.
	StallTimeout time.Duration

	Source Source // nil: the capture device
	Sink   Sink   // nil: none
	// CaptureSink receives every microphone frame as the encoder sees it
	// (after Source and muting); a test and diagnostics hook like Sink.
	CaptureSink Sink
	Logger      *slog.Logger // nil: discard
}

func (c *Config) setDefaults() {
	if c.Bitrate == 0 {
		c.Bitrate = 32000
	}
	if c.JitterTarget == 0 {
		c.JitterTarget = 60 * time.Millisecond
	}
	if c.JitterMax == 0 {
		c.JitterMax = 320 * time.Millisecond
	}
	if c.Period == 0 {
		c.Period = 10 * time.Millisecond
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 3 * time.Second
	}
	if c.EchoTail == 0 {
		c.EchoTail = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendAuto, BackendALSA, BackendPulse:
		if c.Playback == "" {
			return errors.New("audio config: playback: a device name is required with the " + c.Backend.String() + " backend")
		}
		if c.Capture == "" {
			return errors.New("audio config: capture: a device name is required with the " + c.Backend.String() + " backend")
		}
	case BackendNull:
	default:
		return fmt.Errorf("audio config: backend: unknown value %d", int(c.Backend))
	}
	if c.Bitrate != 0 && (c.Bitrate < 6000 || c.Bitrate > 510000) {
		return fmt.Errorf("audio config: bitrate: %d outside 6000..510000", c.Bitrate)
	}
	if c.Complexity < 0 || c.Complexity > 10 {
		return fmt.Errorf("audio config: complexity: %d outside 0..10", c.Complexity)
	}
	if c.JitterTarget < 0 || c.JitterTarget > time.Second {
		return fmt.Errorf("audio config: jitter target: %v outside 0..1s", c.JitterTarget)
	}
	if c.JitterMax < 0 || (c.JitterMax != 0 && c.JitterMax < c.JitterTarget+60*time.Millisecond) {
		return fmt.Errorf("audio config: jitter max: %v must exceed the target by 60ms", c.JitterMax)
	}
	if c.Period < 0 || c.Period > 100*time.Millisecond {
		return fmt.Errorf("audio config: period: %v outside 0..100ms", c.Period)
	}
	if c.EchoTail != 0 && (c.EchoTail < FrameDuration || c.EchoTail > time.Second) {
		return fmt.Errorf("audio config: echo tail: %v outside %v..1s", c.EchoTail, FrameDuration)
	}
	if c.EchoDelay < 0 || c.EchoDelay > time.Second {
		return fmt.Errorf("audio config: echo delay: %v outside 0..1s", c.EchoDelay)
	}
	if c.StallTimeout < 0 {
		return fmt.Errorf("audio config: stall timeout: %v is negative", c.StallTimeout)
	}
	return nil
}
