package camera

import (
	"errors"
	"fmt"

	"github.com/intercomd/intercomd/hw/camera/m2m"
	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/io/video"
)

// EncoderKind selects the H.264 encoder.
type EncoderKind string

// Encoder kinds. EncoderAuto uses the V4L2 memory-to-memory encoder (the Pi's
// bcm2835-codec, /dev/video11) when one is present and opens, and openh264 otherwise.
const (
	EncoderAuto     EncoderKind = "auto"
	EncoderHardware EncoderKind = "hardware"
	EncoderOpenH264 EncoderKind = "openh264"
)

func (k EncoderKind) valid() bool {
	return k == "" || k == EncoderAuto || k == EncoderHardware || k == EncoderOpenH264
}

// EncoderInfo describes one H.264 encoder the machine has.
type EncoderInfo struct {
	// Kind is EncoderHardware or EncoderOpenH264; Device and Card name a hardware one.
	Kind         EncoderKind
	Device, Card string
}

// Encoders lists the H.264 encoders of the machine: the V4L2 memory-to-memory
// encoders from I420 first, then openh264, which is always there. The first is what
// EncoderAuto picks, provided it opens at the configured size.
func Encoders() []EncoderInfo {
	var out []EncoderInfo
	if dev, card := m2m.FindH264(); dev != "" {
		out = append(out, EncoderInfo{Kind: EncoderHardware, Device: dev, Card: card})
	}
	return append(out, EncoderInfo{Kind: EncoderOpenH264})
}

// hwEncoder is a V4L2 memory-to-memory encoder behind mediadevices' encoder
// interface, so the pipeline drives it as it drives openh264: one per session.
type hwEncoder struct {
	r   video.Reader
	enc *m2m.Encoder
}

func (h *hwEncoder) Read() ([]byte, func(), error) {
	img, release, err := h.r.Read()
	if err != nil {
		return nil, nil, err
	}
	f, err := h.enc.Encode(img)
	release()
	if err != nil {
		return nil, nil, fmt.Errorf("hardware encoder: %w", err)
	}
	return f.Data, func() {}, nil
}

func (h *hwEncoder) Close() error                        { return h.enc.Close() }
func (h *hwEncoder) Controller() codec.EncoderController { return h }
func (h *hwEncoder) ForceKeyFrame() error                { h.enc.ForceKeyFrame(); return nil }
func (h *hwEncoder) SetBitRate(bps int) error            { return h.enc.SetBitRate(bps) }

// errNoHardwareEncoder: no V4L2 H.264 encoder was found.
var errNoHardwareEncoder = errors.New("no V4L2 H.264 memory-to-memory encoder (such as the Pi's /dev/video11)")

// newHardwareEncoder opens the configured or the first hardware encoder for src.
func (p *Pipeline) newHardwareEncoder(r video.Reader, src Source) (codec.ReadCloser, string, error) {
	dev := p.cfg.Encoder.Device
	if dev == "" {
		dev, _ = m2m.FindH264()
		if dev == "" {
			return nil, "", errNoHardwareEncoder
		}
	}
	enc, err := m2m.Open(m2m.Config{
		Device: dev, Format: m2m.FourCCH264,
		Width: src.Width, Height: src.Height, FrameRate: src.FrameRate,
		BitRate: int(p.bitRate.Load()), KeyFrameInterval: int(p.cfg.Encoder.keyFrameInterval(src)),
	})
	if err != nil {
		return nil, dev, err
	}
	if len(enc.Unapplied) > 0 {
		p.log.Warn("hardware encoder ignores some settings", "device", dev, "settings", enc.Unapplied)
	}
	return &hwEncoder{r: r, enc: enc}, dev + " (" + enc.Card() + ")", nil
}
