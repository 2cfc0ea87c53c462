// Package vp8enc is a small binding of libvpx's VP8 encoder, set up for
// live video on a small board: one pass, real time, constant bit rate,
// error resilient, no look-ahead, one thread and a fixed speed.
//
// libvpx is linked statically from Debian's libvpx-dev (libvpx.a of the
// target architecture), as openh264 and libopus are: the binary needs no
// libvpx package where it runs, and the cross binaries run under qemu-user
// with the cross compilers' C library alone. A libvpx security fix
// therefore needs a rebuild. Its notice is COPYING.libvpx.
//
// The speed is why it exists beside mediadevices' vpx package, which leaves
// libvpx's cpu_used at 0: libvpx then picks its speed itself so that each
// frame takes up to the whole frame interval, that is up to a core at
// 30 fps. Here cpu_used is negative (a fixed speed, as WebRTC's own VP8
// encoder sets it), so the encoder costs what the picture needs.
package vp8enc

// #cgo LDFLAGS: -l:libvpx.a -lm -lpthread
// #include <stdlib.h>
// #include <string.h>
// #include <vpx/vpx_encoder.h>
// #include <vpx/vp8cx.h>
//
// static vpx_codec_err_t set_int(vpx_codec_ctx_t *ctx, int id, int v) { return vpx_codec_control_(ctx, id, v); }
// static vpx_codec_iface_t *iface_vp8(void) { return vpx_codec_vp8_cx(); }
// static int pkt_is_frame(const vpx_codec_cx_pkt_t *p) { return p->kind == VPX_CODEC_CX_FRAME_PKT; }
// static void *pkt_buf(const vpx_codec_cx_pkt_t *p) { return p->data.frame.buf; }
// static size_t pkt_sz(const vpx_codec_cx_pkt_t *p) { return p->data.frame.sz; }
// static int pkt_key(const vpx_codec_cx_pkt_t *p) { return (p->data.frame.flags & VPX_FRAME_IS_KEY) != 0; }
import "C"

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"time"
	"unsafe"
)

// DefaultSpeed is libvpx's speed (the magnitude of cpu_used) unless Config
// sets one: WebRTC's own choice, 12 on ARM boards, 6 elsewhere.
func DefaultSpeed() int {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "arm64" {
		return 12
	}
	return 6
}

// Config sets up an encoder.
type Config struct {
	// Width and Height of the frames, even.
	Width, Height int
	// FrameRate is the nominal frame rate, for the rate control.
	FrameRate float64
	// BitRate is the target in bits per second.
	BitRate int
	// KeyFrameInterval is the most frames between key frames; 0 is
	// libvpx's default.
	KeyFrameInterval int
	// Speed is libvpx's cpu_used as a fixed speed, 4 (slow, better
	// pictures) to 16 (fastest); 0 is DefaultSpeed.
	Speed int
}

// Encoder is one VP8 encoder. Its methods must not be called concurrently.
type Encoder struct {
	ctx    *C.vpx_codec_ctx_t
	img    *C.vpx_image_t
	cfg    *C.vpx_codec_enc_cfg_t
	w, h   int
	pts    int64 // in the time base, microseconds
	closed bool
}

// New creates an encoder.
func New(c Config) (*Encoder, error) {
	if c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 {
		return nil, fmt.Errorf("vp8: size %dx%d: must be even and positive", c.Width, c.Height)
	}
	if c.FrameRate <= 0 || c.BitRate <= 0 {
		return nil, errors.New("vp8: frame rate and bit rate must be positive")
	}
	speed := c.Speed
	if speed == 0 {
		speed = DefaultSpeed()
	}
	if speed < 4 || speed > 16 {
		return nil, fmt.Errorf("vp8: speed %d outside 4..16", speed)
	}
	cfg := (*C.vpx_codec_enc_cfg_t)(C.calloc(1, C.sizeof_vpx_codec_enc_cfg_t))
	if ec := C.vpx_codec_enc_config_default(C.iface_vp8(), cfg, 0); ec != C.VPX_CODEC_OK {
		C.free(unsafe.Pointer(cfg))
		return nil, fmt.Errorf("vp8: default config: %s", C.GoString(C.vpx_codec_err_to_string(ec)))
	}
	cfg.g_w, cfg.g_h = C.uint(c.Width), C.uint(c.Height)
	cfg.g_timebase.num, cfg.g_timebase.den = 1, 1_000_000
	cfg.g_threads = 1
	cfg.g_lag_in_frames = 0
	cfg.g_pass = C.VPX_RC_ONE_PASS
	cfg.g_error_resilient = C.VPX_ERROR_RESILIENT_DEFAULT
	cfg.rc_end_usage = C.VPX_CBR
	cfg.rc_target_bitrate = C.uint(max(c.BitRate/1000, 1))
	cfg.rc_resize_allowed = 0
	cfg.rc_min_quantizer, cfg.rc_max_quantizer = 2, 56
	cfg.rc_undershoot_pct, cfg.rc_overshoot_pct = 100, 15
	cfg.rc_buf_initial_sz, cfg.rc_buf_optimal_sz, cfg.rc_buf_sz = 500, 600, 1000
	cfg.kf_mode = C.VPX_KF_AUTO
	if c.KeyFrameInterval > 0 {
		cfg.kf_max_dist = C.uint(c.KeyFrameInterval)
	}
	ctx := (*C.vpx_codec_ctx_t)(C.calloc(1, C.sizeof_vpx_codec_ctx_t))
	if ec := C.vpx_codec_enc_init_ver(ctx, C.iface_vp8(), cfg, 0, C.VPX_ENCODER_ABI_VERSION); ec != C.VPX_CODEC_OK {
		C.free(unsafe.Pointer(ctx))
		C.free(unsafe.Pointer(cfg))
		return nil, fmt.Errorf("vp8: init: %s", C.GoString(C.vpx_codec_err_to_string(ec)))
	}
	e := &Encoder{ctx: ctx, cfg: cfg, w: c.Width, h: c.Height}
	for _, ctl := range []struct {
		id, v C.int
	}{
		{C.VP8E_SET_CPUUSED, C.int(-speed)},
		{C.VP8E_SET_NOISE_SENSITIVITY, 0},
		{C.VP8E_SET_STATIC_THRESHOLD, 1},
		{C.VP8E_SET_MAX_INTRA_BITRATE_PCT, 300}, // key frames at most 3 frames' worth
	} {
		if ec := C.set_int(ctx, ctl.id, ctl.v); ec != C.VPX_CODEC_OK {
			e.Close()
			return nil, fmt.Errorf("vp8: control %d: %s", ctl.id, C.GoString(C.vpx_codec_err_to_string(ec)))
		}
	}
	e.img = C.vpx_img_alloc(nil, C.VPX_IMG_FMT_I420, C.uint(c.Width), C.uint(c.Height), 1)
	if e.img == nil {
		e.Close()
		return nil, errors.New("vp8: image allocation failed")
	}
	return e, nil
}

// Encode encodes one I420 frame (image.YCbCrSubsampleRatio420 at the
// configured size) lasting d, as a key frame if key. It returns the frame
// (nil when the rate control dropped it) and whether it is a key frame.
func (e *Encoder) Encode(img *image.YCbCr, d time.Duration, key bool) ([]byte, bool, error) {
	if e.closed {
		return nil, false, errors.New("vp8: encoder closed")
	}
	b := img.Bounds()
	if b.Dx() != e.w || b.Dy() != e.h || img.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil, false, fmt.Errorf("vp8: frame %dx%d %v, want %dx%d 4:2:0", b.Dx(), b.Dy(), img.SubsampleRatio, e.w, e.h)
	}
	copyPlane(e.img.planes[0], int(e.img.stride[0]), img.Y[img.YOffset(b.Min.X, b.Min.Y):], img.YStride, e.w, e.h)
	co := img.COffset(b.Min.X, b.Min.Y)
	copyPlane(e.img.planes[1], int(e.img.stride[1]), img.Cb[co:], img.CStride, e.w/2, e.h/2)
	copyPlane(e.img.planes[2], int(e.img.stride[2]), img.Cr[co:], img.CStride, e.w/2, e.h/2)
	dur := max(d.Microseconds(), 1)
	var flags C.vpx_enc_frame_flags_t
	if key {
		flags |= C.VPX_EFLAG_FORCE_KF
	}
	if ec := C.vpx_codec_encode(e.ctx, e.img, C.vpx_codec_pts_t(e.pts), C.ulong(dur), flags, C.VPX_DL_REALTIME); ec != C.VPX_CODEC_OK {
		return nil, false, fmt.Errorf("vp8: encode: %s", C.GoString(C.vpx_codec_err_to_string(ec)))
	}
	e.pts += dur
	var out []byte
	isKey := false
	var iter C.vpx_codec_iter_t
	for {
		pkt := C.vpx_codec_get_cx_data(e.ctx, &iter)
		if pkt == nil {
			break
		}
		if C.pkt_is_frame(pkt) != 0 {
			out = append(out, C.GoBytes(C.pkt_buf(pkt), C.int(C.pkt_sz(pkt)))...)
			isKey = isKey || C.pkt_key(pkt) != 0
		}
	}
	return out, isKey, nil
}

// SetBitRate changes the target bit rate from the next frame on.
func (e *Encoder) SetBitRate(bps int) error {
	e.cfg.rc_target_bitrate = C.uint(max(bps/1000, 1))
	if ec := C.vpx_codec_enc_config_set(e.ctx, e.cfg); ec != C.VPX_CODEC_OK {
		return fmt.Errorf("vp8: set bit rate: %s", C.GoString(C.vpx_codec_err_to_string(ec)))
	}
	return nil
}

// Close frees the encoder; it is idempotent.
func (e *Encoder) Close() {
	if e.closed {
		return
	}
	e.closed = true
	C.vpx_codec_destroy(e.ctx)
	C.free(unsafe.Pointer(e.ctx))
	C.free(unsafe.Pointer(e.cfg))
	if e.img != nil {
		C.vpx_img_free(e.img)
	}
}

// copyPlane copies rows of w bytes from src (stride ss) into the C plane dst
// (stride ds).
func copyPlane(dst *C.uchar, ds int, src []byte, ss, w, h int) {
	d := unsafe.Slice((*byte)(unsafe.Pointer(dst)), ds*(h-1)+w)
	for y := range h {
		copy(d[y*ds:y*ds+w], src[y*ss:y*ss+w])
	}
}
