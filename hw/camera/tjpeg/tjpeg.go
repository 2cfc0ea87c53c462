// Package tjpeg decodes the JPEG frames of MJPEG cameras with libjpeg-turbo,
// straight into the I420 planes the H.264 encoders take.
//
// # Why
//
// Most USB cameras give 720p only as MJPEG. The Go standard library's decoder
// costs about 3.5 ms a frame at 640x480 and 9.6 ms at 1280x720 on an x86
// core, several times that on a Pi's Cortex cores: at 30 fps it would cost
// more than the encoder. libjpeg-turbo's SIMD decoder (NEON on the Pi) is
// several times faster, and decoding to planes skips the colour conversion
// altogether (BenchmarkMJPEGDecode in hw/camera measures both).
//
// # Linking
//
// The library is loaded at run time (dlopen of libturbojpeg.so.0), like ALSA:
// builds, cross builds included, need no -dev package, and a board without
// the library still works with the standard library's decoder (the camera
// package falls back and logs it). The Debian package recommends
// libturbojpeg0. The few prototypes needed are declared here: they are
// libjpeg-turbo's stable TurboJPEG 2 API, present in 2.0 and later
// (Debian 11 onwards, Raspberry Pi OS).
//
// # Motion JPEG
//
// Cameras often leave the Huffman tables out of each frame (Motion JPEG
// assumes the standard ones); libjpeg-turbo supplies them itself. A frame
// with corrupt data decodes with a warning as far as it goes (a USB camera
// that drops bytes), which Decode reports as a usable frame; a frame that
// cannot be decoded at all is an error.
package tjpeg

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void *tjhandle;

static void *lib;
static tjhandle (*p_init)(void);
static int (*p_header)(tjhandle, const unsigned char *, unsigned long, int *, int *, int *, int *);
static int (*p_planes)(tjhandle, const unsigned char *, unsigned long, unsigned char **, int, int *, int, int);
static int (*p_destroy)(tjhandle);
static char *(*p_error)(tjhandle);
static int (*p_code)(tjhandle);

// tj_load opens the library once; it returns NULL or why it failed.
static const char *tj_load(void) {
	if (lib) return NULL;
	void *l = dlopen("libturbojpeg.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!l) return dlerror();
	p_init = dlsym(l, "tjInitDecompress");
	p_header = dlsym(l, "tjDecompressHeader3");
	p_planes = dlsym(l, "tjDecompressToYUVPlanes");
	p_destroy = dlsym(l, "tjDestroy");
	p_error = dlsym(l, "tjGetErrorStr2");
	p_code = dlsym(l, "tjGetErrorCode");
	if (!p_init || !p_header || !p_planes || !p_destroy || !p_error || !p_code) {
		dlclose(l);
		return "libturbojpeg.so.0 lacks the TurboJPEG 2 API (libjpeg-turbo 2.0 or later)";
	}
	lib = l;
	return NULL;
}

static tjhandle tj_init(void) { return p_init(); }
static void tj_destroy(tjhandle h) { p_destroy(h); }
static const char *tj_error(tjhandle h) { return p_error(h); }
static int tj_code(tjhandle h) { return p_code(h); }
static int tj_header(tjhandle h, const unsigned char *b, unsigned long n, int *w, int *hh, int *ss) {
	int cs;
	return p_header(h, b, n, w, hh, ss, &cs);
}
static int tj_planes(tjhandle h, const unsigned char *b, unsigned long n,
		unsigned char *y, unsigned char *u, unsigned char *v,
		int ys, int us, int vs, int w, int hh) {
	unsigned char *planes[3] = {y, u, v};
	int strides[3] = {ys, us, vs};
	return p_planes(h, b, n, planes, w, strides, hh, 0);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"unsafe"
)

// Chroma subsampling of a JPEG, as TurboJPEG numbers them.
const (
	samp444 = iota
	samp422
	samp420
	sampGray
	samp440
	samp411
)

var (
	loadOnce sync.Once
	loadErr  error
)

// Load loads libjpeg-turbo once; it returns why it is not usable, or nil.
func Load() error {
	loadOnce.Do(func() {
		if msg := C.tj_load(); msg != nil {
			loadErr = fmt.Errorf("libjpeg-turbo not loaded: %s", C.GoString(msg))
		}
	})
	return loadErr
}

// ErrSize is returned for a frame whose size is not the one configured.
var ErrSize = errors.New("jpeg frame size differs from the camera's format")

// A Decoder decodes frames of one size into I420. It is not safe for
// concurrent use; Close frees it.
type Decoder struct {
	tj   C.tjhandle
	w, h int
	// Planes of TurboJPEG's own layout where it differs from I420.
	tmp [3][]byte
}

// NewDecoder returns a decoder for width x height frames.
func NewDecoder(width, height int) (*Decoder, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("jpeg decoder: bad size %dx%d", width, height)
	}
	h := C.tj_init()
	if h == nil {
		return nil, errors.New("jpeg decoder: tjInitDecompress failed")
	}
	return &Decoder{tj: h, w: width, h: height}, nil
}

// NewFrame returns an I420 frame of the decoder's size.
func (d *Decoder) NewFrame() *image.YCbCr {
	return image.NewYCbCr(image.Rect(0, 0, d.w, d.h), image.YCbCrSubsampleRatio420)
}

// Decode decodes one JPEG into dst, an I420 frame of the decoder's size (from
// NewFrame). A frame decoded with a warning (corrupt or truncated data) is
// returned as decoded with a nil error.
func (d *Decoder) Decode(jpeg []byte, dst *image.YCbCr) error {
	if d.tj == nil {
		return errors.New("jpeg decoder closed")
	}
	if len(jpeg) == 0 {
		return errors.New("empty jpeg frame")
	}
	if dst.Rect.Dx() != d.w || dst.Rect.Dy() != d.h || dst.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return fmt.Errorf("jpeg decoder: destination is not %dx%d I420", d.w, d.h)
	}
	// Go memory passed as call arguments stays put for the call.
	src := (*C.uchar)(unsafe.Pointer(&jpeg[0]))
	var w, h, ss C.int
	if C.tj_header(d.tj, src, C.ulong(len(jpeg)), &w, &h, &ss) != 0 {
		return d.fail("read jpeg header")
	}
	if int(w) != d.w || int(h) != d.h {
		return fmt.Errorf("%w: %dx%d, want %dx%d", ErrSize, w, h, d.w, d.h)
	}
	if ss < samp444 || ss > samp411 {
		return fmt.Errorf("jpeg subsampling %d not supported", ss)
	}
	// TurboJPEG writes whole MCUs: its planes are padded to them. Where
	// they are larger than dst's (odd sizes) or another subsampling than
	// 4:2:0 (4:2:2 from most UVC cameras), it decodes into planes of its
	// own, reduced or copied into dst afterwards.
	var planes [3][]byte
	var strides [3]int
	direct := [3][]byte{dst.Y, dst.Cb, dst.Cr}
	directStride := [3]int{dst.YStride, dst.CStride, dst.CStride}
	dw, dh := [3]int{d.w, (d.w + 1) / 2, (d.w + 1) / 2}, [3]int{d.h, (d.h + 1) / 2, (d.h + 1) / 2}
	var pw, ph [3]int
	for c := range planes {
		pw[c], ph[c] = planeSize(int(ss), c, d.w, d.h)
		if pw[c] == dw[c] && ph[c] == dh[c] {
			planes[c], strides[c] = direct[c], directStride[c]
			continue
		}
		n := pw[c] * ph[c]
		if cap(d.tmp[c]) < n {
			d.tmp[c] = make([]byte, n)
		}
		planes[c], strides[c] = d.tmp[c][:n], pw[c]
	}
	rc := C.tj_planes(d.tj, src, C.ulong(len(jpeg)),
		(*C.uchar)(unsafe.Pointer(&planes[0][0])), (*C.uchar)(unsafe.Pointer(&planes[1][0])), (*C.uchar)(unsafe.Pointer(&planes[2][0])),
		C.int(strides[0]), C.int(strides[1]), C.int(strides[2]), C.int(d.w), C.int(d.h))
	if rc != 0 && C.tj_code(d.tj) != 0 { // 0 is TJERR_WARNING: decoded, maybe damaged
		return d.fail("decode jpeg")
	}
	for c := range planes {
		switch {
		case &planes[c][0] == &direct[c][0]:
		case ss == sampGray && c > 0:
			fill(direct[c], 128)
		case c == 0:
			for y := 0; y < d.h; y++ {
				copy(dst.Y[y*dst.YStride:y*dst.YStride+d.w], planes[0][y*pw[0]:])
			}
		default:
			resample(direct[c], directStride[c], dw[c], dh[c], planes[c], pw[c], ph[c])
		}
	}
	return nil
}

// fail makes the error of a failed call and starts over with a new handle:
// TurboJPEG 2 handles refuse every frame after a failed header.
func (d *Decoder) fail(what string) error {
	err := fmt.Errorf("%s: %s", what, C.GoString(C.tj_error(d.tj)))
	C.tj_destroy(d.tj)
	if d.tj = C.tj_init(); d.tj == nil {
		return fmt.Errorf("%w (and the decoder could not be made again)", err)
	}
	return err
}

// Close frees the decoder.
func (d *Decoder) Close() {
	if d.tj != nil {
		C.tj_destroy(d.tj)
		d.tj = nil
	}
}

// MCU sizes of each subsampling (4:4:4, 4:2:2, 4:2:0, grey, 4:4:0, 4:1:1).
var mcuW, mcuH = [6]int{8, 16, 16, 8, 8, 32}, [6]int{8, 8, 16, 8, 16, 8}

// planeSize is the size of plane c (0 luma) that TurboJPEG writes for a
// w x h picture of subsampling ss (tjPlaneWidth and tjPlaneHeight).
func planeSize(ss, c, w, h int) (int, int) {
	if ss == sampGray && c > 0 {
		return 1, 1 // not written; a placeholder
	}
	pad := func(v, to int) int { return (v + to - 1) / to * to }
	pw, ph := pad(w, mcuW[ss]/8), pad(h, mcuH[ss]/8)
	if c > 0 {
		pw, ph = pw*8/mcuW[ss], ph*8/mcuH[ss]
	}
	return pw, ph
}

// resample fills the dw x dh plane dst (stride ds) from the sw x sh plane
// src: 4:2:2 (sw == dw, sh == 2dh or 2dh-1) averages row pairs; other
// layouts take the nearest sample.
func resample(dst []byte, ds, dw, dh int, src []byte, sw, sh int) {
	if sw == dw && (sh+1)/2 == dh {
		for yy := 0; yy < dh; yy++ {
			a := src[2*yy*sw : 2*yy*sw+dw]
			b := a
			if 2*yy+1 < sh {
				b = src[(2*yy+1)*sw : (2*yy+1)*sw+dw]
			}
			row := dst[yy*ds : yy*ds+dw]
			for x := range row {
				row[x] = byte((int(a[x]) + int(b[x]) + 1) >> 1)
			}
		}
		return
	}
	for yy := 0; yy < dh; yy++ {
		sr := src[(yy*sh/dh)*sw:]
		row := dst[yy*ds : yy*ds+dw]
		for x := range row {
			row[x] = sr[x*sw/dw]
		}
	}
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
