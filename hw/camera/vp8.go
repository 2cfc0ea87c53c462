package camera

import (
	"fmt"
	"image"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/intercomd/intercomd/hw/camera/vp8enc"
)

// VP8 is the pipeline's second encoder, for viewers that cannot receive
// H.264 (a Firefox without its OpenH264 plugin, LibreWolf, some Linux
// builds): libvpx (package vp8enc), encoding the same raw frames as the H.264 encoder into
// one track of its own that every such viewer shares. It runs only while
// someone holds it (Acquire): it starts at the next captured frame after
// the first Acquire and stops at the next frame after the last release (or
// with the source), so a household whose phones all take H.264 pays
// nothing for it. At most one VP8 encoder runs at any time.
//
// VP8 needs raw frames: a source that passes H.264 through (a camera that
// encodes, a pipe source such as rpicam-vid) has none, and its VP8
// viewers get no picture; the pipeline logs it once per session. The
// board's hardware H.264 encoder (m2m) is fed raw frames, so VP8 works
// beside it.
//
// Key frames are as for H.264: HandleRTCP turns the viewers' PLI and FIR
// into rate-limited requests, ViewerJoined forces one at the next frame.
type VP8 struct {
	p     *Pipeline
	track *webrtc.TrackLocalStaticSample

	users          atomic.Int32
	keyFrameWanted atomic.Bool
	viewerKeyFrame atomic.Bool
	running        atomic.Int32
	started        atomic.Uint64
	frames         atomic.Uint64
	keyFrames      atomic.Uint64
	dropped        atomic.Uint64
}

// VP8Capability returns the VP8 codec of the second track, with the RTCP
// feedback a viewer needs to ask for key frames and retransmissions.
func VP8Capability() webrtc.RTPCodecCapability {
	c := CodecCapability()
	c.MimeType, c.SDPFmtpLine = webrtc.MimeTypeVP8, ""
	return c
}

// VP8Parameters returns VP8Capability with a payload type, for
// (*webrtc.MediaEngine).RegisterCodec.
func VP8Parameters(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: VP8Capability(), PayloadType: pt}
}

// VP8 returns the pipeline's VP8 encoder.
func (p *Pipeline) VP8() *VP8 { return p.vp8 }

// Track returns the shared VP8 track; add it to the PeerConnection of every
// viewer that takes VP8 and not H.264.
func (v *VP8) Track() *webrtc.TrackLocalStaticSample { return v.track }

// Acquire counts one viewer of the VP8 track: the encoder runs while any
// holds it. Call the returned function (once; later calls do nothing) when
// the viewer leaves.
func (v *VP8) Acquire() (release func()) {
	v.users.Add(1)
	var once sync.Once
	return func() { once.Do(func() { v.users.Add(-1) }) }
}

// Users returns the number of holders.
func (v *VP8) Users() int { return int(v.users.Load()) }

// ForceKeyFrame asks for a VP8 key frame, rate-limited as the pipeline's
// ForceKeyFrame is.
func (v *VP8) ForceKeyFrame() { v.keyFrameWanted.Store(true) }

// ViewerJoined makes the next VP8 frame a key frame (a viewer connected).
func (v *VP8) ViewerJoined() { v.viewerKeyFrame.Store(true) }

// HandleRTCP drains sender's RTCP on a new goroutine, forcing VP8 key frames
// on PLI and FIR; the channel closes when sender has stopped.
func (v *VP8) HandleRTCP(sender RTCPReader) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ReadRTCP(sender, v.ForceKeyFrame); err != nil {
			v.p.log.Debug("vp8 rtcp reader ended", "err", err)
		}
	}()
	return done
}

// EncodersRunning returns 1 while the VP8 encoder runs, else 0.
func (v *VP8) EncodersRunning() int { return int(v.running.Load()) }

// EncodersStarted returns the number of VP8 encoders created since New.
func (v *VP8) EncodersStarted() uint64 { return v.started.Load() }

// Frames returns the VP8 frames and key frames written to the track.
func (v *VP8) Frames() (frames, keyFrames uint64) { return v.frames.Load(), v.keyFrames.Load() }

// vp8Branch is a running VP8 encoder of one session: the session's encode
// goroutine hands it copies of the raw frames (the newest one waits; older
// ones are dropped if it falls behind), its own goroutine encodes them.
type vp8Branch struct {
	frames chan image.Image
	done   chan struct{}
	w, h   int
}

// vp8Feed runs on the session's encode goroutine for every raw frame: it
// starts the VP8 encoder when it is wanted and not running, stops it when
// it is no longer wanted, and hands it a copy of frame.
func (p *Pipeline) vp8Feed(s *session, frame image.Image) {
	v := p.vp8
	b := s.vp8
	want := v.users.Load() > 0
	if b != nil && (!want || b.w != frame.Bounds().Dx() || b.h != frame.Bounds().Dy()) {
		p.vp8Stop(s)
		b = nil
	}
	if !want {
		return
	}
	if b == nil {
		var err error
		if b, err = p.vp8Start(s, frame.Bounds().Dx(), frame.Bounds().Dy()); err != nil {
			if !s.vp8Failed {
				p.log.Warn("vp8 encoder does not start: VP8 viewers get no picture", "source", s.src.Name, "err", err)
				s.vp8Failed = true
			}
			return
		}
		s.vp8 = b
	}
	select {
	case b.frames <- copyFrame(frame):
	default:
		v.dropped.Add(1) // the encoder is still busy with the previous frame
	}
}

// vp8Start creates the VP8 encoder at the frame's size and its goroutine.
func (p *Pipeline) vp8Start(s *session, w, h int) (*vp8Branch, error) {
	b := &vp8Branch{frames: make(chan image.Image, 1), done: make(chan struct{}), w: w, h: h}
	enc, err := p.newVP8(frameReader(b.frames), s.src, w, h)
	if err != nil {
		return nil, err
	}
	v := p.vp8
	v.started.Add(1)
	v.running.Add(1)
	v.viewerKeyFrame.Store(false) // a new encoder starts with a key frame
	v.keyFrameWanted.Store(false)
	p.log.Info("vp8 encoder started", "source", s.src.Name, "size", frameSize(w, h), "viewers", v.users.Load())
	go func() {
		defer close(b.done)
		p.vp8Encode(s.src, enc)
		if err := enc.Close(); err != nil {
			p.log.Warn("close vp8 encoder", "err", err)
		}
	}()
	return b, nil
}

// newVP8 creates a VP8 encoder (package vp8enc: real-time, constant bit
// rate at the pipeline's bit rate, error resilient, one thread, a fixed
// speed) of w x h frames read from r.
func (p *Pipeline) newVP8(r video.Reader, src Source, w, h int) (codec.ReadCloser, error) {
	enc, err := vp8enc.New(vp8enc.Config{
		Width: w, Height: h, FrameRate: src.FrameRate,
		BitRate:          int(p.bitRate.Load()),
		KeyFrameInterval: int(p.cfg.Encoder.keyFrameInterval(src)),
	})
	if err != nil {
		return nil, err
	}
	return &vp8Reader{r: video.ToI420(r), enc: enc, frameTime: time.Duration(float64(time.Second) / src.FrameRate), now: time.Now}, nil
}

// vp8Reader reads frames from r and encodes them, as mediadevices'
// encoders do; its controls apply to the next Read and, like Read, are
// called on one goroutine.
type vp8Reader struct {
	r         video.Reader
	enc       *vp8enc.Encoder
	key       bool
	frameTime time.Duration
	last      time.Time
	now       func() time.Time // when a frame is read: its duration is the time since the last
}

func (v *vp8Reader) Read() ([]byte, func(), error) {
	img, release, err := v.r.Read()
	if err != nil {
		return nil, func() {}, err
	}
	defer release()
	yuv, ok := img.(*image.YCbCr)
	if !ok {
		return nil, func() {}, fmt.Errorf("vp8: frame is %T, not I420", img)
	}
	now := v.now()
	d := v.frameTime
	if !v.last.IsZero() {
		d = now.Sub(v.last)
	}
	v.last = now
	data, _, err := v.enc.Encode(yuv, d, v.key)
	v.key = false
	return data, func() {}, err
}

func (v *vp8Reader) Close() error                        { v.enc.Close(); return nil }
func (v *vp8Reader) Controller() codec.EncoderController { return v }
func (v *vp8Reader) ForceKeyFrame() error                { v.key = true; return nil }
func (v *vp8Reader) SetBitRate(bps int) error            { return v.enc.SetBitRate(bps) }

// vp8Stop ends the session's VP8 encoder and waits for it.
func (p *Pipeline) vp8Stop(s *session) {
	if s.vp8 == nil {
		return
	}
	close(s.vp8.frames)
	<-s.vp8.done
	s.vp8 = nil
	p.vp8.running.Add(-1)
	p.log.Info("vp8 encoder stopped", "source", s.src.Name, "viewers", p.vp8.users.Load())
}

// vp8Encode encodes frames until their channel closes. Key frame requests
// are applied between frames: libvpx's encoder holds its lock while it
// waits for the next frame.
func (p *Pipeline) vp8Encode(src Source, enc codec.ReadCloser) {
	v := p.vp8
	ctl, _ := enc.Controller().(codec.KeyFrameController)
	frameTime := time.Duration(float64(time.Second) / src.FrameRate)
	var last, lastKey time.Time
	for {
		force := v.viewerKeyFrame.Swap(false)
		if force {
			v.keyFrameWanted.Store(false)
		} else {
			force = time.Since(lastKey) >= p.cfg.Encoder.MinKeyFrameGap && v.keyFrameWanted.CompareAndSwap(true, false)
		}
		if force && ctl != nil {
			_ = ctl.ForceKeyFrame()
		}
		data, release, err := enc.Read()
		if err != nil {
			if err != io.EOF {
				p.log.Warn("vp8 encoder", "err", err)
			}
			return
		}
		now := time.Now()
		dur := frameTime
		if !last.IsZero() {
			dur = now.Sub(last)
		}
		last = now
		if len(data) > 0 {
			if IsVP8KeyFrame(data) {
				lastKey = now
				v.keyFrames.Add(1)
			}
			v.frames.Add(1)
			if err := v.track.WriteSample(media.Sample{Data: data, Duration: dur}); err != nil {
				p.log.Debug("write vp8 sample", "err", err)
			}
		}
		release()
	}
}

// IsVP8KeyFrame reports whether a VP8 frame is a key frame (RFC 6386 9.1:
// bit 0 of the frame tag is 0).
func IsVP8KeyFrame(frame []byte) bool { return len(frame) > 0 && frame[0]&1 == 0 }

// frameReader reads frames from a channel until it closes (io.EOF).
type frameReader chan image.Image

func (r frameReader) Read() (image.Image, func(), error) {
	img, ok := <-r
	if !ok {
		return nil, func() {}, io.EOF
	}
	return img, func() {}, nil
}
