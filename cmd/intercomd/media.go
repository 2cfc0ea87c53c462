package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/hw/audio"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/hw/camera"
	"github.com/intercomd/intercomd/internal/hwconfig"
	"github.com/intercomd/intercomd/media"
	"github.com/intercomd/intercomd/media/whep"
)

// devices is the device's own media: the camera pipeline, the audio
// engine and the WebRTC layer built on them.
type devices struct {
	cam   *camera.Pipeline
	audio *audio.Engine
	media *media.Media
	whep  *whep.Server                        // nil unless whep.enabled
	bound atomic.Pointer[func(calling.Input)] // the agent's Post
}

// openDevices opens the camera and the sound card. Optional hardware that
// is missing degrades with a clear log line (the test pattern for a camera,
// the null device for sound when the backend is auto); hardware the
// configuration requires fails start-up with an error naming it.
func (d *daemon) openDevices(ctx context.Context) (*devices, error) {
	dv := &devices{}
	if d.cfg.Media.Video {
		cam, err := d.openCamera(ctx)
		if err != nil {
			return nil, err
		}
		dv.cam = cam
	}
	eng, err := d.openAudio(ctx)
	if err != nil {
		dv.close()
		return nil, err
	}
	dv.audio = eng
	return dv, nil
}

func (d *daemon) openCamera(ctx context.Context) (*camera.Pipeline, error) {
	c := d.cfg.Camera
	var cc camera.Config
	for _, dev := range c.Devices {
		src, err := hwconfig.CameraSource(dev)
		if err != nil {
			return nil, err
		}
		cc.Sources = append(cc.Sources, src)
	}
	hasPattern := false
	for _, s := range cc.Sources {
		hasPattern = hasPattern || s.IsTestPattern()
	}
	if c.FallbackTestPattern && !hasPattern {
		w, h, fps := 640, 480, 30.0
		if len(cc.Sources) > 0 {
			w, h, fps = cc.Sources[0].Width, cc.Sources[0].Height, cc.Sources[0].FrameRate
		}
		cc.Sources = append(cc.Sources, camera.Source{Name: "test-pattern", Device: camera.TestPatternDevice, Width: w, Height: h, FrameRate: fps})
	}
	cc.Encoder.BitRate = c.Bitrate
	cc.Encoder.Kind = camera.EncoderKind(c.Encoder)
	cc.Encoder.Device = c.EncoderDevice
	// Capture and encode only during video calls: the media layer switches the
	// camera on when a call joins and off when the last one leaves.
	cc.StartOff = true
	if len(cc.Sources) > 0 && c.KeyframeInterval > 0 {
		// The encoder counts frames.
		cc.Encoder.KeyFrameInterval = max(1, int(c.KeyframeInterval.Seconds()*cc.Sources[0].FrameRate))
	}
	for i, dev := range c.Devices {
		if s := &cc.Sources[i]; dev.Device == config.RpicamDevice && len(dev.Command) == 0 {
			// rpicam-vid's own encoder runs at the configured rate and key frame interval.
			intra := max(1, int(c.KeyframeInterval.Seconds()*s.FrameRate))
			s.Command = camera.RpicamCommand(s.Width, s.Height, s.FrameRate, c.Bitrate, intra)
		}
	}
	p, err := camera.New(cc, d.log.With("component", "camera"))
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	if err := p.Start(ctx); err != nil {
		if !c.FallbackTestPattern {
			p.Close()
			return nil, fmt.Errorf("camera %s: %w", cc.Sources[0].Device, err)
		}
		d.log.Warn("camera missing: sending the test pattern", "camera", cc.Sources[0].Device, "err", err)
		if err := p.Switch(ctx, "test-pattern"); err != nil {
			p.Close()
			return nil, fmt.Errorf("camera test pattern: %w", err)
		}
	}
	return p, nil
}

// hasSoundCard reports whether ALSA lists a card.
func hasSoundCard() bool {
	b, err := os.ReadFile("/proc/asound/cards")
	return err == nil && len(b) > 0 && !strings.Contains(string(b), "no soundcards")
}

func (d *daemon) openAudio(ctx context.Context) (*audio.Engine, error) {
	a := d.cfg.Audio
	ac := audio.Config{Bitrate: a.MicBitrate, Complexity: a.MicComplexity, Playback: a.Playback, Capture: a.Capture, Logger: d.log}
	if ac.Playback == "" {
		ac.Playback = "default"
	}
	if ac.Capture == "" {
		ac.Capture = "default"
	}
	card := hasSoundCard()
	var err error
	ac.Backend, ac.NullFallback, err = hwconfig.AudioBackend(a.Backend, card)
	if err != nil {
		return nil, err
	}
	if ac.NullFallback && !card {
		d.log.Warn("no sound card: audio goes to the null device (calls carry silence from here)")
	}
	// A test tone replaces the microphone: there is no echo to remove.
	ac.EchoCancel, ac.EchoTail, ac.EchoDelay = a.EchoCancel && a.TestTone == 0, a.EchoTail, a.EchoDelay
	if a.TestTone > 0 {
		d.log.Info("the microphone is a test tone", "hz", a.TestTone)
		ac.Source = &audiotest.Tone{Freq: float64(a.TestTone), Amp: 0.3}
	}
	eng, err := audio.New(ac)
	if err != nil {
		return nil, fmt.Errorf("audio: %w", err)
	}
	eng.SetVolume(a.Volume)
	if err := eng.Start(ctx); err != nil {
		eng.Close()
		return nil, fmt.Errorf("audio: %w", err)
	}
	return eng, nil
}

// openMedia builds the WebRTC layer on the devices, before the endpoint
// exists: a media error stops start-up before signaling opens. What media
// posts goes to the agent the endpoint binds with mediaFactory.
func (d *daemon) openMedia(dv *devices) error {
	mc := media.Config{
		UDPPort:           d.cfg.Media.UDPPort,
		ICERestartTimeout: d.cfg.Media.ICERestartTimeout,
		DisableVideo:      !d.cfg.Media.Video,
	}
	for _, s := range d.cfg.Media.STUNServers {
		mc.ICEServers = append(mc.ICEServers, webrtc.ICEServer{URLs: []string{s}})
	}
	for _, t := range d.cfg.Media.TURNServers {
		mc.ICEServers = append(mc.ICEServers, webrtc.ICEServer{URLs: []string{t.URL}, Username: t.Username, Credential: t.Credential.Reveal()})
	}
	if d.env.faults.loopbackMedia {
		mc.LoopbackOnly = true // tests: nothing leaves the machine
	}
	opts := media.Options{Config: mc, Post: dv.post, User: d.cfg.Device.User, Logger: d.log.With("component", "media")}
	if dv.audio != nil {
		opts.Audio = media.EngineAudio{Engine: dv.audio}
	}
	if dv.cam != nil {
		opts.Camera = dv.cam
	}
	m, err := media.New(opts)
	if err != nil {
		return err // "media: ..."
	}
	dv.media = m
	return nil
}

// mediaFactory hands the endpoint the media built by openMedia, binding
// its posts to the endpoint's agent (before the agent runs).
func (dv *devices) mediaFactory(post func(calling.Input)) agent.Media {
	dv.bound.Store(&post)
	return dv.media
}

// post forwards media's inputs to the agent once bound.
func (dv *devices) post(in calling.Input) {
	if p := dv.bound.Load(); p != nil {
		(*p)(in)
	}
}

func (dv *devices) close() error {
	var errs []error
	if dv.whep != nil {
		dv.whep.Close()
	}
	if dv.media != nil {
		errs = append(errs, dv.media.Close())
	}
	if dv.cam != nil {
		errs = append(errs, dv.cam.Close())
	}
	if dv.audio != nil {
		errs = append(errs, dv.audio.Close())
	}
	return errors.Join(errs...)
}
