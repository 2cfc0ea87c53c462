// Package opus is a small cgo binding to libopus for intercomd's audio engine:
// one Encoder (VOIP application, voice signal, configurable bitrate, optional
// in-band FEC) and one Decoder with packet loss concealment and FEC recovery.
//
// # Why this binding
//
// intercomd needs loss concealment when a packet is missing, which rules out
// the pure-Go pion/opus decoder (no PLC, no FEC), and it needs an encoder it
// can drive frame by frame from its own duplex audio callback, which the
// mediadevices encoder (a pull-based reader that panics on a negative libopus
// return) does not offer. hraban/opus would need libopus-dev on the build and
// target machines. Instead this package calls libopus 1.3.1 directly and links
// the static libraries that github.com/pion/mediadevices already ships for
// linux amd64, arm64 and armv7 (it imports that package for its link flags
// only), so native and cross builds need no extra Debian -dev package. Building
// with the mediadevices "dynamic" tag links the system libopus instead. That
// import also links mediadevices' codec package, and through it pion/webrtc,
// though none of their code is called (the daemon links them anyway).
//
// The few libopus prototypes needed are declared here rather than taken from
// opus.h, whose include path lives inside another module.
//
// # Concurrency
//
// An Encoder or a Decoder is not safe for concurrent use: each belongs to one
// goroutine (the audio engine's processing loop). Close frees the C state and
// must be called exactly once when the owner is done; calls after Close return
// ErrClosed. Encode and Decode do not allocate.
package opus

/*
#include <stdint.h>
#include <stdlib.h>

typedef struct OpusEncoder OpusEncoder;
typedef struct OpusDecoder OpusDecoder;

OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error);
int32_t opus_encode(OpusEncoder *st, const int16_t *pcm, int frame_size, unsigned char *data, int32_t max_data_bytes);
void opus_encoder_destroy(OpusEncoder *st);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);

OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error);
int opus_decode(OpusDecoder *st, const unsigned char *data, int32_t len, int16_t *pcm, int frame_size, int decode_fec);
void opus_decoder_destroy(OpusDecoder *st);
int opus_decoder_ctl(OpusDecoder *st, int request, ...);
int opus_packet_get_nb_samples(const unsigned char packet[], int32_t len, int32_t Fs);

const char *opus_strerror(int error);
const char *opus_get_version_string(void);

// cgo cannot call variadic functions: one fixed-arity wrapper per request.
static int icd_enc_set_int(OpusEncoder *st, int request, int value) {
	return opus_encoder_ctl(st, request, value);
}
static int icd_enc_reset(OpusEncoder *st) {
	return opus_encoder_ctl(st, 4028);
}
static int icd_dec_reset(OpusDecoder *st) {
	return opus_decoder_ctl(st, 4028);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	// Linked for its static libopus and the matching cgo LDFLAGS only.
	_ "github.com/pion/mediadevices/pkg/codec/opus"
)

// libopus constants (opus_defines.h, stable ABI).
const (
	applicationVOIP     = 2048
	setBitrateRequest   = 4002
	setComplexityReq    = 4010
	setInbandFECRequest = 4012
	setPacketLossPerc   = 4014
	setDTXRequest       = 4016
	setSignalRequest    = 4024
	signalVoice         = 3001
)

// MaxPacketSize is the largest Opus packet Encode produces; a buffer of this
// size always suffices.
const MaxPacketSize = 1276

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("opus: closed")

// Error is a negative libopus return code.
type Error int

func (e Error) Error() string {
	return "opus: " + C.GoString(C.opus_strerror(C.int(e)))
}

// Version returns the linked libopus version string, for example "libopus 1.3.1".
func Version() string {
	return C.GoString(C.opus_get_version_string())
}

// EncoderConfig configures an Encoder. Zero fields take the defaults noted.
type EncoderConfig struct {
	SampleRate int // 8000, 12000, 16000, 24000 or 48000; default 48000
	Channels   int // 1 or 2; default 1
	Bitrate    int // bits per second; default 32000
	Complexity int // 0..10; default 0 means libopus' default (9 or 10)
	// FEC enables in-band forward error correction, useful when the receiver
	// decodes with DecodeFEC; it costs bitrate. PacketLossPercent tunes it.
	FEC               bool
	PacketLossPercent int
	DTX               bool // discontinuous transmission during silence
}

// Encoder encodes 16-bit PCM into Opus packets.
type Encoder struct {
	st       *C.OpusEncoder
	channels int
	rate     int
}

// NewEncoder creates an encoder in VOIP mode tuned for voice.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 48000
	}
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 32000
	}
	if cfg.Bitrate < 6000 || cfg.Bitrate > 510000 {
		return nil, fmt.Errorf("opus: bitrate %d outside 6000..510000", cfg.Bitrate)
	}
	if cfg.Complexity < 0 || cfg.Complexity > 10 {
		return nil, fmt.Errorf("opus: complexity %d outside 0..10", cfg.Complexity)
	}
	var cerr C.int
	st := C.opus_encoder_create(C.int32_t(cfg.SampleRate), C.int(cfg.Channels), applicationVOIP, &cerr)
	if cerr != 0 || st == nil {
		return nil, fmt.Errorf("create opus encoder (%d Hz, %d ch): %w", cfg.SampleRate, cfg.Channels, Error(cerr))
	}
	e := &Encoder{st: st, channels: cfg.Channels, rate: cfg.SampleRate}
	settings := []struct {
		name       string
		req, value int
	}{
		{"bitrate", setBitrateRequest, cfg.Bitrate},
		{"signal", setSignalRequest, signalVoice},
		{"fec", setInbandFECRequest, b2i(cfg.FEC)},
		{"packet loss", setPacketLossPerc, cfg.PacketLossPercent},
		{"dtx", setDTXRequest, b2i(cfg.DTX)},
	}
	if cfg.Complexity > 0 {
		settings = append(settings, struct {
			name       string
			req, value int
		}{"complexity", setComplexityReq, cfg.Complexity})
	}
	for _, s := range settings {
		if r := C.icd_enc_set_int(st, C.int(s.req), C.int(s.value)); r < 0 {
			e.Close()
			return nil, fmt.Errorf("set opus encoder %s to %d: %w", s.name, s.value, Error(r))
		}
	}
	return e, nil
}

// SetBitrate changes the target bitrate in bits per second.
func (e *Encoder) SetBitrate(bps int) error {
	if e.st == nil {
		return ErrClosed
	}
	if r := C.icd_enc_set_int(e.st, setBitrateRequest, C.int(bps)); r < 0 {
		return fmt.Errorf("set opus bitrate %d: %w", bps, Error(r))
	}
	return nil
}

// Encode encodes one frame of interleaved PCM into out and returns the packet
// length. The frame must hold 2.5, 5, 10, 20, 40 or 60 ms of audio per channel.
// out should be at least MaxPacketSize bytes long.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.st == nil {
		return 0, ErrClosed
	}
	if len(pcm) == 0 || len(pcm)%e.channels != 0 || len(out) == 0 {
		return 0, fmt.Errorf("opus encode: bad buffer sizes (pcm %d, out %d)", len(pcm), len(out))
	}
	n := C.opus_encode(e.st, (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)/e.channels),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.int32_t(len(out)))
	if n < 0 {
		return 0, fmt.Errorf("opus encode %d samples: %w", len(pcm), Error(n))
	}
	return int(n), nil
}

// Reset returns the encoder to its freshly created state.
func (e *Encoder) Reset() error {
	if e.st == nil {
		return ErrClosed
	}
	if r := C.icd_enc_reset(e.st); r < 0 {
		return fmt.Errorf("reset opus encoder: %w", Error(r))
	}
	return nil
}

// Close frees the encoder. It is safe to call more than once.
func (e *Encoder) Close() {
	if e.st != nil {
		C.opus_encoder_destroy(e.st)
		e.st = nil
	}
}

// Decoder decodes Opus packets into 16-bit PCM and conceals lost packets.
type Decoder struct {
	st       *C.OpusDecoder
	channels int
	rate     int
}

// NewDecoder creates a decoder producing PCM at sampleRate with channels
// interleaved channels (Opus resamples internally; 48000 and 1 for intercomd).
func NewDecoder(sampleRate, channels int) (*Decoder, error) {
	var cerr C.int
	st := C.opus_decoder_create(C.int32_t(sampleRate), C.int(channels), &cerr)
	if cerr != 0 || st == nil {
		return nil, fmt.Errorf("create opus decoder (%d Hz, %d ch): %w", sampleRate, channels, Error(cerr))
	}
	return &Decoder{st: st, channels: channels, rate: sampleRate}, nil
}

// Decode decodes one packet into pcm and returns the number of samples per
// channel written. pcm must be large enough for the packet (120 ms, 5760
// samples per channel at 48 kHz, always suffices; 20 ms needs 960).
func (d *Decoder) Decode(packet []byte, pcm []int16) (int, error) {
	if d.st == nil {
		return 0, ErrClosed
	}
	if len(packet) == 0 {
		return d.Conceal(pcm)
	}
	return d.decode(packet, pcm, 0)
}

// Conceal synthesises len(pcm)/channels samples per channel in place of a
// lost packet (libopus PLC, a NULL packet). len(pcm) must be a multiple of
// 2.5 ms; concealment fades to silence over successive calls.
func (d *Decoder) Conceal(pcm []int16) (int, error) {
	if d.st == nil {
		return 0, ErrClosed
	}
	return d.decode(nil, pcm, 0)
}

// DecodeFEC recovers the packet lost just before next from next's in-band FEC
// data, writing len(pcm)/channels samples per channel (the lost packet's
// duration). When next carries no FEC data libopus falls back to concealment.
func (d *Decoder) DecodeFEC(next []byte, pcm []int16) (int, error) {
	if d.st == nil {
		return 0, ErrClosed
	}
	if len(next) == 0 {
		return d.decode(nil, pcm, 0)
	}
	return d.decode(next, pcm, 1)
}

func (d *Decoder) decode(packet []byte, pcm []int16, fec int) (int, error) {
	if len(pcm) < d.channels {
		return 0, fmt.Errorf("opus decode: pcm buffer of %d samples too small", len(pcm))
	}
	var data *C.uchar
	if len(packet) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&packet[0]))
	}
	n := C.opus_decode(d.st, data, C.int32_t(len(packet)), (*C.int16_t)(unsafe.Pointer(&pcm[0])),
		C.int(len(pcm)/d.channels), C.int(fec))
	if n < 0 {
		return 0, fmt.Errorf("opus decode %d bytes: %w", len(packet), Error(n))
	}
	return int(n), nil
}

// Reset returns the decoder to its freshly created state (a new stream).
func (d *Decoder) Reset() error {
	if d.st == nil {
		return ErrClosed
	}
	if r := C.icd_dec_reset(d.st); r < 0 {
		return fmt.Errorf("reset opus decoder: %w", Error(r))
	}
	return nil
}

// Close frees the decoder. It is safe to call more than once.
func (d *Decoder) Close() {
	if d.st != nil {
		C.opus_decoder_destroy(d.st)
		d.st = nil
	}
}

// PacketSamples returns the number of samples per channel a packet decodes to
// at sampleRate, or an error for a malformed packet.
func PacketSamples(packet []byte, sampleRate int) (int, error) {
	if len(packet) == 0 {
		return 0, errors.New("opus: empty packet")
	}
	n := C.opus_packet_get_nb_samples((*C.uchar)(unsafe.Pointer(&packet[0])), C.int32_t(len(packet)), C.int32_t(sampleRate))
	if n < 0 {
		return 0, fmt.Errorf("opus packet duration: %w", Error(n))
	}
	return int(n), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
