package camera

import (
	"errors"
	"fmt"
	"image"

	"github.com/intercomd/intercomd/hw/camera/m2m"
	"github.com/pion/mediadevices/pkg/codec"
)

// h264Source passes a V4L2 camera's own H.264 through (a UVC camera that encodes,
// Source.PixelFormat H264): each buffer is one access unit. It is both the session's
// capture and its encoder; key frames are asked of the camera where it has the
// control, or else come with its next periodic one.
type h264Source struct {
	dev    *m2m.Capture
	params paramCache
	keyCtl bool // the camera took a key frame request
}

func openH264Camera(src Source) (*h264Source, error) {
	c, err := m2m.OpenCapture(src.Device, m2m.FourCCH264, src.Width, src.Height, src.FrameRate)
	if err != nil {
		return nil, err
	}
	return &h264Source{dev: c}, nil
}

// Read is unused: the camera gives encoded frames only.
func (s *h264Source) Read() (image.Image, func(), error) {
	return nil, nil, errors.New("H.264 camera gives no raw frames")
}

func (s *h264Source) close() error { return s.dev.Close() }

type h264Encoder struct{ s *h264Source }

func (e h264Encoder) Read() ([]byte, func(), error) {
	for {
		data, err := e.s.dev.Read()
		if err != nil {
			return nil, nil, err
		}
		if au := e.s.params.frame(data); au != nil {
			return au, func() {}, nil
		}
		if len(nalTypes(data)) == 0 {
			return nil, nil, fmt.Errorf("camera sends no H.264 (%d bytes without a NAL unit)", len(data))
		}
	}
}
func (e h264Encoder) Close() error                        { return nil }
func (e h264Encoder) Controller() codec.EncoderController { return e }

// ForceKeyFrame asks the camera; a camera without the control is not an error.
func (e h264Encoder) ForceKeyFrame() error {
	e.s.dev.RequestKeyFrame()
	return nil
}
