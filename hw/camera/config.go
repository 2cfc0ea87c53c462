package camera

import (
	"errors"
	"fmt"
	"time"
)

// TestPatternDevice is the Source.Device value that selects the built-in test pattern
// instead of a V4L2 camera.
const TestPatternDevice = "testpattern"

// PixelFormat names a V4L2 capture format. The empty value lets the pipeline pick the
// cheapest format the camera offers at the configured size (I420, NV12, NV21, YUYV,
// UYVY, then MJPEG, which costs a decode: libjpeg-turbo where installed, else Go's).
type PixelFormat string

// Pixel formats a camera can be captured in. H264 is passed through as the camera
// encoded it (read with package m2m's Capture); the others are encoded here.
const (
	PixelFormatAuto  PixelFormat = ""
	PixelFormatI420  PixelFormat = "I420"
	PixelFormatNV12  PixelFormat = "NV12"
	PixelFormatNV21  PixelFormat = "NV21"
	PixelFormatYUYV  PixelFormat = "YUYV"
	PixelFormatUYVY  PixelFormat = "UYVY"
	PixelFormatMJPEG PixelFormat = "MJPEG"
	// PixelFormatH264 passes a camera's own H.264 through, unencoded; never picked
	// by PixelFormatAuto.
	PixelFormatH264 PixelFormat = "H264"
)

// formatPreference orders the capture formats from cheapest to most costly to convert to
// the encoder's I420.
func formatPreference() []PixelFormat {
	return []PixelFormat{
		PixelFormatI420, PixelFormatNV12, PixelFormatNV21, PixelFormatYUYV, PixelFormatUYVY, PixelFormatMJPEG,
	}
}

func (f PixelFormat) valid() bool {
	if f == PixelFormatAuto || f == PixelFormatH264 {
		return true
	}
	for _, g := range formatPreference() {
		if f == g {
			return true
		}
	}
	return false
}

// Source describes one video source the pipeline can switch to.
type Source struct {
	// Name identifies the source for Switch and in logs and status ("front", "porch").
	// Defaults to Device.
	Name string
	// Device is a V4L2 device path (/dev/video0, /dev/v4l/by-id/...), a device name as
	// reported by Devices (the card name, or the mediadevices label), or
	// TestPatternDevice.
	Device string
	// Width and Height of the captured and encoded picture in pixels; both even.
	// Default 640x480.
	Width, Height int
	// FrameRate in frames per second requested from the camera (VIDIOC_S_PARM) and
	// given to the encoder's rate control. Default 30.
	FrameRate float64
	// Command, when set, makes this a pipe source: the command (such as
	// RpicamCommand for a Pi camera module) writes H.264 Annex B to its standard
	// output, and its frames are sent as they are, without decoding or encoding.
	// Device is then only a label. The stream must be constrained baseline; key
	// frames come when the command makes them (ForceKeyFrame cannot ask it), with
	// the latest SPS/PPS put before any that lack them. The command is restarted
	// every RetryInterval after it ends.
	Command []string
	// PixelFormat to capture; empty picks one (see PixelFormat). Ignored by the test
	// pattern.
	PixelFormat PixelFormat
	// PatternSeed varies the test pattern's colours and is written into its bar code, so
	// tests can tell two pattern sources apart. Ignored by cameras.
	PatternSeed uint16
	// PatternNoise adds noise of up to ± this many luma steps (0..MaxPatternNoise),
	// new in every frame, to the test pattern below its bar code, as a camera's
	// sensor does: a clean pattern compresses to a fraction of the configured bit
	// rate, a noisy one loads the encoder and the network like a camera. Ignored by
	// cameras.
	PatternNoise int
}

// MaxPatternNoise is the largest Source.PatternNoise: ±4 already makes the encoder
// spend 1 Mbit/s on 640x480 at 30 frames per second.
const MaxPatternNoise = 12

// IsTestPattern reports whether the source is the built-in test pattern.
func (s Source) IsTestPattern() bool { return s.Device == TestPatternDevice && len(s.Command) == 0 }

// Encoder configures the one H.264 encoder (constrained baseline).
type Encoder struct {
	// Kind selects the encoder: EncoderAuto (default), EncoderHardware or
	// EncoderOpenH264.
	Kind EncoderKind
	// Device is the hardware encoder's node; empty finds the first V4L2 H.264
	// memory-to-memory encoder.
	Device string
	// BitRate is the target bit rate in bits per second. Default 1 Mbit/s (openh264's
	// own default of 100 kbit/s is far too low for 640x480).
	BitRate int
	// KeyFrameInterval is the number of frames between periodic key frames (openh264's
	// IntraPeriod). Default 4 s worth of frames at the source's frame rate.
	KeyFrameInterval int
	// MinKeyFrameGap rate-limits forced key frames (PLI, FIR, a viewer joining): requests
	// closer together than this are coalesced into one, sent when the gap has passed.
	// Default 500 ms.
	MinKeyFrameGap time.Duration
	// SteadyFrameRate stops openh264's rate control from dropping frames to hold the
	// bit rate: the frame rate stays steady and the bit rate may overshoot on busy
	// pictures. By default frames are dropped, as browsers' encoders do.
	SteadyFrameRate bool
}

// Config configures a Pipeline.
type Config struct {
	// Sources lists the video sources, at least one. Sources[0] is opened by Start.
	Sources []Source
	// Encoder configures the H.264 encoder shared by every viewer.
	Encoder Encoder
	// TrackID and StreamID label the WebRTC track. Defaults "video" and "intercomd".
	TrackID, StreamID string
	// RetryInterval is how long the pipeline waits before reopening a source that
	// failed or vanished. Default 2 s.
	RetryInterval time.Duration
	// StartOff makes the pipeline start switched off, as after SetEnabled(false):
	// Start only checks that Sources[0] opens (and closes it again, creating no
	// encoder), and nothing is captured or encoded until SetEnabled(true). A daemon
	// that sends video only during calls sets it, so an idle device spends no CPU on
	// the camera and the camera's LED stays dark.
	StartOff bool
}

// Defaults used by WithDefaults.
const (
	DefaultWidth          = 640
	DefaultHeight         = 480
	DefaultFrameRate      = 30
	DefaultBitRate        = 1_000_000
	DefaultMinKeyFrameGap = 500 * time.Millisecond
	DefaultRetryInterval  = 2 * time.Second
	defaultKeyFrameSecs   = 4
)

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	c.Sources = append([]Source(nil), c.Sources...)
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Name == "" {
			s.Name = s.Device
		}
		if s.Width == 0 && s.Height == 0 {
			s.Width, s.Height = DefaultWidth, DefaultHeight
		}
		if s.FrameRate == 0 {
			s.FrameRate = DefaultFrameRate
		}
	}
	if c.Encoder.Kind == "" {
		c.Encoder.Kind = EncoderAuto
	}
	if c.Encoder.BitRate == 0 {
		c.Encoder.BitRate = DefaultBitRate
	}
	if c.Encoder.MinKeyFrameGap == 0 {
		c.Encoder.MinKeyFrameGap = DefaultMinKeyFrameGap
	}
	if c.TrackID == "" {
		c.TrackID = "video"
	}
	if c.StreamID == "" {
		c.StreamID = "intercomd"
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	return c
}

// Validate reports the first invalid field of c, naming it and the rule.
func (c Config) Validate() error {
	if len(c.Sources) == 0 {
		return errors.New("sources: at least one source is required")
	}
	names := make(map[string]bool, len(c.Sources))
	for i, s := range c.Sources {
		field := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Device == "":
			return fmt.Errorf("%s.device: must be a device path, a device name or %q", field, TestPatternDevice)
		case s.Name == "":
			return fmt.Errorf("%s.name: must not be empty", field)
		case names[s.Name]:
			return fmt.Errorf("%s.name: %q is used by another source", field, s.Name)
		case s.Width < 16 || s.Height < 16 || s.Width > 4096 || s.Height > 4096:
			return fmt.Errorf("%s: size %dx%d is outside 16x16 to 4096x4096", field, s.Width, s.Height)
		case s.Width%2 != 0 || s.Height%2 != 0:
			return fmt.Errorf("%s: width and height must be even, got %dx%d", field, s.Width, s.Height)
		case s.FrameRate <= 0 || s.FrameRate > 120:
			return fmt.Errorf("%s.frame_rate: must be in (0, 120], got %g", field, s.FrameRate)
		case !s.PixelFormat.valid():
			return fmt.Errorf("%s.pixel_format: unknown format %q", field, s.PixelFormat)
		case s.PatternNoise < 0 || s.PatternNoise > MaxPatternNoise:
			return fmt.Errorf("%s.pattern_noise: must be in 0..%d, got %d", field, MaxPatternNoise, s.PatternNoise)
		}
		names[s.Name] = true
	}
	switch {
	case !c.Encoder.Kind.valid():
		return fmt.Errorf("encoder.kind: must be %q, %q or %q, got %q", EncoderAuto, EncoderHardware, EncoderOpenH264, c.Encoder.Kind)
	case c.Encoder.BitRate < 10_000 || c.Encoder.BitRate > 50_000_000:
		return fmt.Errorf("encoder.bit_rate: must be between 10000 and 50000000 bit/s, got %d", c.Encoder.BitRate)
	case c.Encoder.KeyFrameInterval < 0:
		return fmt.Errorf("encoder.key_frame_interval: must not be negative, got %d", c.Encoder.KeyFrameInterval)
	case c.Encoder.MinKeyFrameGap < 0:
		return fmt.Errorf("encoder.min_key_frame_gap: must not be negative, got %s", c.Encoder.MinKeyFrameGap)
	case c.RetryInterval < 0:
		return fmt.Errorf("retry_interval: must not be negative, got %s", c.RetryInterval)
	}
	return nil
}

// keyFrameInterval is the IntraPeriod for a source.
func (e Encoder) keyFrameInterval(s Source) uint {
	if e.KeyFrameInterval > 0 {
		return uint(e.KeyFrameInterval)
	}
	return uint(s.FrameRate*defaultKeyFrameSecs + 0.5)
}
