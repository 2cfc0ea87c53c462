package camera

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"sync"

	"github.com/intercomd/intercomd/hw/camera/m2m"
	"github.com/intercomd/intercomd/hw/camera/tjpeg"
)

// fourCCMJPEG is V4L2_PIX_FMT_MJPEG.
const fourCCMJPEG = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24

// maxBadJPEG is how many undecodable frames in a row make an MJPEG camera a
// failed source (a camera that says MJPEG and sends something else).
const maxBadJPEG = 30

// mjpegSource reads an MJPEG camera's frames and decodes them with
// libjpeg-turbo straight into I420 (package tjpeg), several times faster
// than the standard library's decoder mediadevices uses, which remains the
// fallback where libjpeg-turbo is not installed.
type mjpegSource struct {
	dev  *m2m.Capture
	free chan *image.YCbCr // frames the encoder has released, for reuse

	mu  sync.Mutex // held while decoding; close waits for it
	dec *tjpeg.Decoder
	bad int // undecodable frames in a row
}

// MJPEGDecoder says which decoder an MJPEG camera gets: "libjpeg-turbo", or
// "image/jpeg" with why libjpeg-turbo is not used.
func MJPEGDecoder() (string, error) {
	if err := tjpeg.Load(); err != nil {
		return "image/jpeg", err
	}
	return "libjpeg-turbo", nil
}

func openMJPEG(device string, src Source) (*mjpegSource, error) {
	formats, err := m2m.CaptureFormats(device)
	if err != nil {
		return nil, openError(device, err)
	}
	if !slices.Contains(formats, "MJPG") {
		return nil, fmt.Errorf("camera %s: MJPEG (offers %s): %w", device, strings.Join(formats, ", "), ErrFormat)
	}
	dec, err := tjpeg.NewDecoder(src.Width, src.Height)
	if err != nil {
		return nil, err
	}
	dev, err := m2m.OpenCapture(device, fourCCMJPEG, src.Width, src.Height, src.FrameRate)
	if err != nil {
		dec.Close()
		return nil, openError(device, err)
	}
	return &mjpegSource{dev: dev, dec: dec, free: make(chan *image.YCbCr, 2)}, nil
}

// Read returns the next decodable frame. Frames that do not decode are
// skipped, up to maxBadJPEG in a row.
func (s *mjpegSource) Read() (image.Image, func(), error) {
	for {
		data, err := s.dev.Read()
		if err != nil {
			return nil, nil, err
		}
		var f *image.YCbCr
		select {
		case f = <-s.free:
		default:
			f = s.dec.NewFrame()
		}
		s.mu.Lock()
		err = s.dec.Decode(data, f)
		s.mu.Unlock()
		if err == nil {
			s.bad = 0
			return f, func() { s.release(f) }, nil
		}
		s.release(f)
		if s.bad++; s.bad >= maxBadJPEG || errors.Is(err, tjpeg.ErrSize) {
			return nil, nil, fmt.Errorf("camera sends no usable MJPEG (%d frames in a row): %w", s.bad, err)
		}
	}
}

func (s *mjpegSource) release(f *image.YCbCr) {
	select {
	case s.free <- f:
	default:
	}
}

// close stops streaming (a Read in progress returns) and frees the decoder.
func (s *mjpegSource) close() error {
	err := s.dev.Close()
	s.mu.Lock()
	s.dec.Close()
	s.mu.Unlock()
	return err
}
