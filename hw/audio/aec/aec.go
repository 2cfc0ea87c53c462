// Package aec cancels the echo of the speaker in the microphone: SpeexDSP's
// multidelay adaptive filter (MDF) followed by its preprocessor's residual
// echo suppression, on 16-bit mono frames.
//
// The SpeexDSP 1.2.1 sources needed for that (the echo canceller, the
// preprocessor, their FFT) are compiled into this package, floating point
// with KISS FFT, so native and cross builds need no extra Debian package
// (COPYING holds their licence). No other part of SpeexDSP is included.
//
// # Use
//
// Process takes one captured frame and the frame the speaker played while
// it was captured, or earlier: the filter finds the echo up to Tail after
// the reference. Feed it every frame, silence included, so its timing holds.
// A Canceller belongs to one goroutine; Close frees it.
package aec

/*
#cgo CFLAGS: -DFLOATING_POINT -DUSE_KISS_FFT -DEXPORT= -I${SRCDIR} -O2 -Wno-unused-variable -Wno-unused-but-set-variable
#cgo LDFLAGS: -lm
#include <stdlib.h>
#include "speex/speex_echo.h"
#include "speex/speex_preprocess.h"

typedef struct {
	SpeexEchoState *echo;
	SpeexPreprocessState *pre;
} icd_aec;

static icd_aec *icd_aec_new(int frame, int tail, int rate) {
	icd_aec *a = calloc(1, sizeof *a);
	if (!a) return NULL;
	a->echo = speex_echo_state_init(frame, tail);
	a->pre = speex_preprocess_state_init(frame, rate);
	if (!a->echo || !a->pre) {
		if (a->echo) speex_echo_state_destroy(a->echo);
		if (a->pre) speex_preprocess_state_destroy(a->pre);
		free(a);
		return NULL;
	}
	speex_echo_ctl(a->echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
	// Only what the echo leaves: no denoising, no gain control (the VAD is
	// off by default), so the
	// near end reaches the far end as the microphone heard it.
	int off = 0;
	speex_preprocess_ctl(a->pre, SPEEX_PREPROCESS_SET_DENOISE, &off);
	speex_preprocess_ctl(a->pre, SPEEX_PREPROCESS_SET_AGC, &off);
	speex_preprocess_ctl(a->pre, SPEEX_PREPROCESS_SET_DEREVERB, &off);
	speex_preprocess_ctl(a->pre, SPEEX_PREPROCESS_SET_ECHO_STATE, a->echo);
	return a;
}

static void icd_aec_process(icd_aec *a, const spx_int16_t *mic, const spx_int16_t *ref, spx_int16_t *out) {
	speex_echo_cancellation(a->echo, mic, ref, out);
	speex_preprocess_run(a->pre, out);
}

static void icd_aec_reset(icd_aec *a) {
	speex_echo_state_reset(a->echo);
}

static void icd_aec_free(icd_aec *a) {
	speex_echo_state_destroy(a->echo);
	speex_preprocess_state_destroy(a->pre);
	free(a);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrClosed is returned by Process after Close.
var ErrClosed = errors.New("aec: closed")

// Canceller removes the speaker's echo from microphone frames.
type Canceller struct {
	st    *C.icd_aec
	frame int
}

// New returns a canceller for frames of frame samples at rate Hz that finds
// echoes up to tail after their reference. The filter's cost grows with
// tail/frame.
func New(rate, frame int, tail time.Duration) (*Canceller, error) {
	taps := int(tail.Seconds() * float64(rate))
	switch {
	case rate < 8000 || rate > 48000:
		return nil, fmt.Errorf("aec: sample rate %d outside 8000..48000", rate)
	case frame <= 0 || frame > rate/10:
		return nil, fmt.Errorf("aec: frame of %d samples outside 1..%d", frame, rate/10)
	case taps < frame || tail > time.Second:
		return nil, fmt.Errorf("aec: tail %v outside one frame..1s", tail)
	}
	st := C.icd_aec_new(C.int(frame), C.int(taps), C.int(rate))
	if st == nil {
		return nil, errors.New("aec: cannot allocate the echo canceller")
	}
	return &Canceller{st: st, frame: frame}, nil
}

// Process writes mic without the echo of ref into out. All three hold one
// frame; out may be mic.
func (c *Canceller) Process(mic, ref, out []int16) error {
	if c.st == nil {
		return ErrClosed
	}
	if len(mic) != c.frame || len(ref) != c.frame || len(out) != c.frame {
		return fmt.Errorf("aec: frames of %d, %d and %d samples, want %d", len(mic), len(ref), len(out), c.frame)
	}
	C.icd_aec_process(c.st, (*C.spx_int16_t)(unsafe.Pointer(&mic[0])), (*C.spx_int16_t)(unsafe.Pointer(&ref[0])),
		(*C.spx_int16_t)(unsafe.Pointer(&out[0])))
	return nil
}

// Reset forgets the echo path learnt so far (after the speaker or the
// microphone changes).
func (c *Canceller) Reset() {
	if c.st != nil {
		C.icd_aec_reset(c.st)
	}
}

// Close frees the canceller. It is safe to call more than once.
func (c *Canceller) Close() {
	if c.st != nil {
		C.icd_aec_free(c.st)
		c.st = nil
	}
}
