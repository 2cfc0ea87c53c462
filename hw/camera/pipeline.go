package camera

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/openh264"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Errors returned by the Pipeline's methods.
var (
	// ErrClosed: the pipeline was closed (or its Start context ended).
	ErrClosed = errors.New("camera pipeline closed")
	// ErrNotStarted: Switch or SetEnabled before Start.
	ErrNotStarted = errors.New("camera pipeline not started")
	// ErrUnknownSource: Switch named no configured source.
	ErrUnknownSource = errors.New("unknown camera source")
)

// Status is a snapshot of a Pipeline for status pages and metrics.
type Status struct {
	// Source is the name of the selected source.
	Source string
	// Enabled is false while the camera is switched off.
	Enabled bool
	// Capturing is true while a source is open and frames are being encoded.
	Capturing bool
	// Err is the last error of the selected source (opening or capturing); nil once it
	// captures again. While it is set the pipeline retries every RetryInterval.
	Err error
	// Frames and KeyFrames count the encoded frames written to the track;
	// ForcedKeyFrames those key frames produced on request (ForceKeyFrame),
	// KeyFrameRequests the requests received (before rate limiting).
	Frames, KeyFrames, ForcedKeyFrames, KeyFrameRequests uint64
	// EncodersRunning and EncodersStarted are as the methods of the same names.
	EncodersRunning int
	EncodersStarted uint64
}

// Pipeline captures one source at a time, encodes it with one H.264 encoder and writes
// the samples into one track that every viewer's PeerConnection adds.
type Pipeline struct {
	cfg   Config
	log   *slog.Logger
	track *webrtc.TrackLocalStaticSample
	vp8   *VP8

	cmds    chan command
	stopped chan struct{} // closed when the control loop has returned
	wg      sync.WaitGroup

	lifeMu  sync.Mutex // guards cancel, started
	cancel  context.CancelFunc
	started bool

	keyFrameWanted atomic.Bool
	viewerKeyFrame atomic.Bool  // a viewer joined: key frame at once, not rate-limited
	bitRate        atomic.Int64 // wanted bit rate; applied by the encode goroutine
	encRunning     atomic.Int32
	encPeak        atomic.Int32
	encStarted     atomic.Uint64
	frames         atomic.Uint64
	keyFrames      atomic.Uint64
	forced         atomic.Uint64
	requests       atomic.Uint64

	statusMu sync.Mutex
	status   Status // Source, Enabled, Capturing, Err

	snapMu   sync.Mutex
	snapWant []chan image.Image // Snapshot calls waiting for the next frame

	// lastSample is the time the previous sample was written. Only the encode
	// goroutine of the current session touches it; sessions never overlap.
	lastSample time.Time
}

// New validates cfg (after applying defaults) and returns a pipeline that has not
// started. log may be nil.
func New(cfg Config, log *slog.Logger) (*Pipeline, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("camera config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	track, err := webrtc.NewTrackLocalStaticSample(CodecCapability(), cfg.TrackID, cfg.StreamID)
	if err != nil {
		return nil, fmt.Errorf("create video track: %w", err)
	}
	vp8Track, err := webrtc.NewTrackLocalStaticSample(VP8Capability(), cfg.TrackID, cfg.StreamID)
	if err != nil {
		return nil, fmt.Errorf("create vp8 track: %w", err)
	}
	p := &Pipeline{
		cfg:     cfg,
		log:     log,
		track:   track,
		cmds:    make(chan command),
		stopped: make(chan struct{}),
	}
	p.vp8 = &VP8{p: p, track: vp8Track}
	p.bitRate.Store(int64(cfg.Encoder.BitRate))
	p.status = Status{Source: cfg.Sources[0].Name, Enabled: !cfg.StartOff}
	return p, nil
}

// Track returns the shared track. Add it to every viewer's PeerConnection; it stays the
// same across Switch and SetEnabled, so no renegotiation is needed.
func (p *Pipeline) Track() *webrtc.TrackLocalStaticSample { return p.track }

// Start starts the pipeline and opens Sources[0]. If that source cannot be opened, Start
// returns the error (wrapping ErrNoDevice, ErrBusy or ErrFormat where they apply) and
// the pipeline keeps running without a source, retrying every RetryInterval; call
// Switch to choose another source (such as a test pattern) or Close. With
// Config.StartOff, Start opens Sources[0] only to check it and closes it again (no
// encoder, no retries): the same errors tell that the source is missing, and
// SetEnabled(true) starts capturing. Cancelling ctx stops the pipeline as Close does.
// Start may be called once.
func (p *Pipeline) Start(ctx context.Context) error {
	p.lifeMu.Lock()
	if p.started {
		p.lifeMu.Unlock()
		return errors.New("camera pipeline already started")
	}
	p.started = true
	ctx, p.cancel = context.WithCancel(ctx)
	p.lifeMu.Unlock()

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(p.stopped)
		p.run(ctx)
	}()
	return p.do(ctx, command{kind: cmdApply})
}

// Close stops capturing and encoding and waits for every goroutine the pipeline
// started, except those of HandleRTCP, which end with their sender. The track stays
// valid but receives no more samples. Close is idempotent.
func (p *Pipeline) Close() error {
	p.lifeMu.Lock()
	cancel := p.cancel
	p.lifeMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	p.wg.Wait()
	return nil
}

// Switch makes the source with the given name the current one: the old source and its
// encoder are closed, then the new one opened with a new encoder, so at most one
// encoder runs at any time. The track stays. It returns the error of opening the new
// source; the pipeline then retries it as Start does. Switching to the current source
// is a no-op. While the camera is off, Switch only selects the source.
func (p *Pipeline) Switch(ctx context.Context, name string) error {
	return p.do(ctx, command{kind: cmdSwitch, source: name})
}

// SetEnabled switches the camera on or off. Off closes the source and the encoder:
// nothing is written to the track (viewers keep showing the last picture) and the
// camera's LED, if any, goes out. On reopens the current source; its first frame is a
// key frame.
func (p *Pipeline) SetEnabled(ctx context.Context, on bool) error {
	return p.do(ctx, command{kind: cmdEnable, enabled: on})
}

// ForceKeyFrame asks the encoder for a key frame. Requests are rate-limited: a key frame
// is forced at most once per MinKeyFrameGap after the previous key frame (periodic ones
// included); requests in between are coalesced into one, served when the gap has passed.
// It never blocks and may be called from any goroutine, also before Start and after
// Close (then it does nothing).
func (p *Pipeline) ForceKeyFrame() {
	p.requests.Add(1)
	p.keyFrameWanted.Store(true)
}

// ViewerJoined is called by the media layer when a viewer's PeerConnection can
// receive the track (connected, SRTP keys agreed): the next frame is a key frame, so
// the viewer's picture starts at once instead of at the next periodic key frame.
// Unlike ForceKeyFrame it is not held back by MinKeyFrameGap: the key frame that a
// new encoder starts with, moments before, was sent before the viewer could decrypt
// it. Joins coalesce into one key frame per encoded frame.
func (p *Pipeline) ViewerJoined() {
	p.requests.Add(1)
	p.viewerKeyFrame.Store(true)
}

// SetBitRate changes the encoder's target bit rate (bits per second) from the next
// frame on; it also applies to encoders created later. Values are clamped to
// 10 kbit/s..50 Mbit/s.
func (p *Pipeline) SetBitRate(bps int) {
	p.bitRate.Store(int64(min(max(bps, 10_000), 50_000_000)))
}

// EncodersRunning returns the number of encoders open right now: 1 while capturing,
// 0 while off or without a source, never more.
func (p *Pipeline) EncodersRunning() int { return int(p.encRunning.Load()) }

// EncodersStarted returns the number of encoders created since New (one per source
// opened, counting reopenings).
func (p *Pipeline) EncodersStarted() uint64 { return p.encStarted.Load() }

// Status returns a snapshot of the pipeline's state and counters.
func (p *Pipeline) Status() Status {
	p.statusMu.Lock()
	s := p.status
	p.statusMu.Unlock()
	s.Frames = p.frames.Load()
	s.KeyFrames = p.keyFrames.Load()
	s.ForcedKeyFrames = p.forced.Load()
	s.KeyFrameRequests = p.requests.Load()
	s.EncodersRunning = p.EncodersRunning()
	s.EncodersStarted = p.EncodersStarted()
	return s
}

func (p *Pipeline) setStatus(f func(*Status)) {
	p.statusMu.Lock()
	f(&p.status)
	p.statusMu.Unlock()
}

type commandKind int

const (
	cmdUnknown commandKind = iota
	cmdApply
	cmdSwitch
	cmdEnable
)

type command struct {
	kind    commandKind
	source  string
	enabled bool
	reply   chan error
}

// do hands cmd to the control loop and waits for its answer.
func (p *Pipeline) do(ctx context.Context, cmd command) error {
	p.lifeMu.Lock()
	started := p.started
	p.lifeMu.Unlock()
	if !started {
		return ErrNotStarted
	}
	cmd.reply = make(chan error, 1)
	select {
	case p.cmds <- cmd:
	case <-p.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-cmd.reply:
		return err
	case <-p.stopped:
		return ErrClosed
	}
}

// run is the control loop: it alone opens and closes sources and encoders.
func (p *Pipeline) run(ctx context.Context) {
	var (
		want    = p.cfg.Sources[0]
		enabled = !p.cfg.StartOff
		cur     *session
		retry   *time.Timer
		retryC  <-chan time.Time
		lastErr string
	)
	stopRetry := func() {
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
	}
	fail := func(err error) {
		if msg := err.Error(); msg != lastErr {
			p.log.Warn("camera source failed", "source", want.Name, "err", err, "retry_in", p.cfg.RetryInterval)
			lastErr = msg
		}
		p.setStatus(func(s *Status) { s.Err = err; s.Capturing = false })
		stopRetry()
		retry = time.NewTimer(p.cfg.RetryInterval)
		retryC = retry.C
	}
	stop := func() {
		if cur == nil {
			return
		}
		p.stopSession(cur)
		cur = nil
		p.setStatus(func(s *Status) { s.Capturing = false })
	}
	// apply brings the open source in line with want and enabled.
	apply := func() error {
		if cur != nil && (!enabled || cur.src.Name != want.Name) {
			stop()
		}
		if !enabled {
			stopRetry()
			p.setStatus(func(s *Status) { s.Err = nil })
			return nil
		}
		if cur != nil {
			return nil
		}
		s, err := p.startSession(want)
		if err != nil {
			fail(err)
			return err
		}
		stopRetry()
		cur, lastErr = s, ""
		p.setStatus(func(st *Status) { st.Err = nil; st.Capturing = true })
		p.log.Info("camera source capturing", "source", want.Name, "device", want.Device,
			"size", frameSize(want.Width, want.Height), "fps", want.FrameRate)
		return nil
	}
	defer stopRetry()
	defer stop()

	for {
		var ended <-chan struct{}
		if cur != nil {
			ended = cur.done
		}
		select {
		case <-ctx.Done():
			return
		case cmd := <-p.cmds:
			var err error
			switch cmd.kind {
			case cmdApply:
				if !enabled {
					err = p.probe(want)
					p.setStatus(func(s *Status) { s.Err = err })
					break
				}
				err = apply()
			case cmdSwitch:
				src, ok := p.source(cmd.source)
				if !ok {
					err = fmt.Errorf("switch to %q: %w", cmd.source, ErrUnknownSource)
					break
				}
				if src.Name != want.Name {
					p.log.Info("camera switching source", "from", want.Name, "to", src.Name)
					want, lastErr = src, ""
					p.setStatus(func(s *Status) { s.Source = src.Name; s.Err = nil })
					stopRetry()
				}
				err = apply()
			case cmdEnable:
				if cmd.enabled != enabled {
					p.log.Info("camera enabled", "on", cmd.enabled)
				}
				enabled = cmd.enabled
				p.setStatus(func(s *Status) { s.Enabled = enabled })
				err = apply()
			default:
				err = fmt.Errorf("unknown camera command %d", cmd.kind)
			}
			cmd.reply <- err
		case <-ended:
			err := cur.err
			stop()
			fail(err)
		case <-retryC:
			retry, retryC = nil, nil
			_ = apply()
		}
	}
}

func (p *Pipeline) source(name string) (Source, bool) {
	for _, s := range p.cfg.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// probe opens src and closes it again: it tells whether the source is there without
// capturing or creating an encoder.
func (p *Pipeline) probe(src Source) error {
	if len(src.Command) > 0 {
		if _, err := exec.LookPath(src.Command[0]); err != nil {
			return fmt.Errorf("pipe source %s: %w", src.Name, err)
		}
		return nil
	}
	if src.IsTestPattern() {
		if err := checkPatternSize(src.Width, src.Height); err != nil {
			return fmt.Errorf("test pattern %s: %w", src.Name, err)
		}
		return nil
	}
	if src.PixelFormat == PixelFormatH264 {
		hs, err := openH264Camera(src)
		if err != nil {
			return err
		}
		return hs.close()
	}
	c, err := openV4L2(src)
	if err != nil {
		return err
	}
	if err := c.close(); err != nil {
		p.log.Warn("close camera source after checking it", "source", src.Name, "err", err)
	}
	return nil
}

// capture is an open source of raw frames.
type capture interface {
	video.Reader
	close() error
}

// session is one open source with its encoder and encode goroutine.
type session struct {
	src  Source
	cap  capture
	enc  codec.ReadCloser
	stop atomic.Bool
	done chan struct{} // closed when the encode goroutine has returned
	err  error         // why it returned; read after done

	// Owned by the encode goroutine (applyRequests runs inside enc.Read on it).
	keyCtl  codec.KeyFrameController
	rateCtl codec.BitRateController
	bitRate int64
	lastKey time.Time
	raw     bool       // the encoder reads raw frames (VP8 can be fed)
	vp8     *vp8Branch // the VP8 encoder, while one runs
	// vp8Failed: the VP8 encoder could not start, or the source has no raw
	// frames for it; logged once per session.
	vp8Failed bool
}

// hookedReader calls hook after each frame it reads and before the encoder reading
// from it encodes that frame, on the encoder's goroutine.
type hookedReader struct {
	r    video.Reader
	hook func(image.Image)
}

func (h *hookedReader) Read() (image.Image, func(), error) {
	img, release, err := h.r.Read()
	if err == nil && h.hook != nil {
		h.hook(img)
	}
	return img, release, err
}

// startSession opens src, creates its encoder and starts the encode goroutine.
func (p *Pipeline) startSession(src Source) (*session, error) {
	var c capture
	if len(src.Command) > 0 {
		ps, err := openPipe(src)
		if err != nil {
			return nil, fmt.Errorf("pipe source %s: %w", src.Name, err)
		}
		p.log.Info("h264 passed through", "source", src.Name, "command", src.Command[0])
		return p.runSession(src, ps, ps.encoder(), nil), nil
	}
	if src.PixelFormat == PixelFormatH264 {
		hs, err := openH264Camera(src)
		if err != nil {
			return nil, err
		}
		p.log.Info("h264 passed through", "source", src.Name, "device", src.Device)
		return p.runSession(src, hs, h264Encoder{hs}, nil), nil
	}
	if src.IsTestPattern() {
		ps, err := newPatternSource(src)
		if err != nil {
			return nil, fmt.Errorf("test pattern %s: %w", src.Name, err)
		}
		c = ps
	} else {
		vc, err := openV4L2(src)
		if err != nil {
			return nil, err
		}
		c = vc
		p.logMJPEG(src, vc)
	}
	hr := &hookedReader{r: c}
	enc, err := p.newEncoder(hr, src)
	if err != nil {
		_ = c.close()
		return nil, fmt.Errorf("create h264 encoder for %s: %w", src.Name, err)
	}
	return p.runSession(src, c, enc, hr), nil
}

// logMJPEG says which decoder an MJPEG camera got.
func (p *Pipeline) logMJPEG(src Source, c capture) {
	switch c := c.(type) {
	case *mjpegSource:
		p.log.Info("mjpeg decoded", "decoder", "libjpeg-turbo", "source", src.Name)
	case *v4l2Capture:
		if c.format == PixelFormatMJPEG {
			_, why := MJPEGDecoder()
			p.log.Warn("mjpeg decoded by the standard library, several times slower: install libturbojpeg0",
				"decoder", "image/jpeg", "source", src.Name, "why", why)
		}
	}
}

// runSession starts the encode goroutine of a session; hr, when not nil, is the
// reader of raw frames whose hook takes snapshots and applies requests.
func (p *Pipeline) runSession(src Source, c capture, enc codec.ReadCloser, hr *hookedReader) *session {
	p.encStarted.Add(1)
	n := p.encRunning.Add(1)
	for {
		peak := p.encPeak.Load()
		if n <= peak || p.encPeak.CompareAndSwap(peak, n) {
			break
		}
	}
	s := &session{src: src, cap: c, enc: enc, done: make(chan struct{})}
	if ctl := enc.Controller(); ctl != nil {
		s.keyCtl, _ = ctl.(codec.KeyFrameController)
		s.rateCtl, _ = ctl.(codec.BitRateController)
	}
	s.bitRate = p.bitRate.Load()
	// A new encoder starts with a key frame: that serves pending requests.
	p.keyFrameWanted.Store(false)
	p.viewerKeyFrame.Store(false)
	s.lastKey = time.Now()
	if hr != nil {
		s.raw = true
		hr.hook = func(img image.Image) {
			p.snap(img)
			p.applyRequests(s)
			p.vp8Feed(s, img)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(s.done)
		s.err = p.encode(s)
	}()
	return s
}

// stopSession closes the source (which makes a pending read return), waits for the
// encode goroutine, then closes the encoder.
func (p *Pipeline) stopSession(s *session) {
	s.stop.Store(true)
	if err := s.cap.close(); err != nil {
		p.log.Warn("close camera source", "source", s.src.Name, "err", err)
	}
	<-s.done
	p.vp8Stop(s)
	if err := s.enc.Close(); err != nil {
		p.log.Warn("close h264 encoder", "source", s.src.Name, "err", err)
	}
	p.encRunning.Add(-1)
}

// newEncoder creates the encoder Encoder.Kind selects for src reading from r, and
// logs which.
func (p *Pipeline) newEncoder(r video.Reader, src Source) (codec.ReadCloser, error) {
	kind := p.cfg.Encoder.Kind
	if kind == EncoderHardware || kind == EncoderAuto {
		enc, name, err := p.newHardwareEncoder(r, src)
		switch {
		case err == nil:
			p.log.Info("h264 encoder", "encoder", "hardware", "device", name, "source", src.Name)
			return enc, nil
		case kind == EncoderHardware:
			return nil, err
		case name != "":
			p.log.Warn("hardware encoder does not work: using openh264", "device", name, "err", err)
		}
	}
	enc, err := p.newOpenH264(r, src)
	if err == nil {
		p.log.Info("h264 encoder", "encoder", "openh264", "source", src.Name)
	}
	return enc, err
}

// newOpenH264 creates the openh264 encoder for src reading from r.
func (p *Pipeline) newOpenH264(r video.Reader, src Source) (codec.ReadCloser, error) {
	params, err := openh264.NewParams()
	if err != nil {
		return nil, err
	}
	params.BitRate = int(p.bitRate.Load())
	params.IntraPeriod = p.cfg.Encoder.keyFrameInterval(src)
	params.EnableFrameSkip = !p.cfg.Encoder.SteadyFrameRate
	params.UsageType = openh264.CameraVideoRealTime
	params.RCMode = openh264.RCBitrateMode
	return params.BuildVideoEncoder(r, prop.Media{Video: prop.Video{
		Width:     src.Width,
		Height:    src.Height,
		FrameRate: float32(src.FrameRate),
	}})
}

// encode is the encode goroutine of one session: it reads encoded frames and writes
// them to the track until the session stops or the source fails. All calls on the
// encoder happen on it except Close: applyRequests runs inside Read, between the
// capture of a frame and its encoding, so a request made while the goroutine waits
// for the camera applies to the very next frame.
func (p *Pipeline) encode(s *session) error {
	frameTime := time.Duration(float64(time.Second) / s.src.FrameRate)
	for !s.stop.Load() {
		data, release, err := s.enc.Read()
		if err != nil {
			if s.stop.Load() {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("capture from %s: source ended: %w", s.src.Name, err)
			}
			return fmt.Errorf("capture from %s: %w", s.src.Name, err)
		}
		now := time.Now()
		if !s.raw && !s.vp8Failed && p.vp8.users.Load() > 0 {
			p.log.Warn("vp8 viewers get no picture: the source passes H.264 through and has no raw frames to encode", "source", s.src.Name)
			s.vp8Failed = true
		}
		if len(data) == 0 { // openh264 skipped the frame
			release()
			continue
		}
		dur := frameTime
		if !p.lastSample.IsZero() {
			dur = now.Sub(p.lastSample)
		}
		p.lastSample = now
		if IsKeyFrame(data) {
			s.lastKey = now
			p.keyFrames.Add(1)
		}
		p.frames.Add(1)
		// Errors name viewers whose connection failed; the media layer removes them.
		if err := p.track.WriteSample(media.Sample{Data: data, Duration: dur}); err != nil {
			p.log.Debug("write video sample", "err", err)
		}
		release()
	}
	return nil
}

// applyRequests applies the pending key frame and bit rate requests to the encoder of
// s just before it encodes a captured frame.
func (p *Pipeline) applyRequests(s *session) {
	force := p.viewerKeyFrame.Swap(false)
	if force {
		p.keyFrameWanted.Store(false) // served by this key frame
	} else {
		force = time.Since(s.lastKey) >= p.cfg.Encoder.MinKeyFrameGap && p.keyFrameWanted.CompareAndSwap(true, false)
	}
	if force && s.keyCtl != nil {
		if err := s.keyCtl.ForceKeyFrame(); err != nil {
			p.log.Warn("force key frame", "err", err)
		} else {
			p.forced.Add(1)
		}
	}
	if br := p.bitRate.Load(); br != s.bitRate && s.rateCtl != nil {
		if err := s.rateCtl.SetBitRate(int(br)); err != nil {
			p.log.Warn("set encoder bit rate", "bps", br, "err", err)
		}
		s.bitRate = br
	}
}

// IsKeyFrame reports whether an H.264 access unit in Annex B form (as the track's
// samples are, and as receivers reassemble them) holds an IDR slice (NAL type 5).
func IsKeyFrame(annexB []byte) bool {
	for _, t := range nalTypes(annexB) {
		if t == 5 {
			return true
		}
	}
	return false
}

// nalTypes lists the NAL unit types of an Annex B byte stream in order.
func nalTypes(annexB []byte) []byte {
	var types []byte
	zeros := 0
	for i, b := range annexB {
		switch {
		case b == 0:
			zeros++
			continue
		case b == 1 && zeros >= 2 && i+1 < len(annexB):
			types = append(types, annexB[i+1]&0x1f)
		}
		zeros = 0
	}
	return types
}
