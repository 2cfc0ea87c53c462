package media

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// ViewerOptions say what a Viewer receives.
type ViewerOptions struct {
	// Video adds the camera track (when there is a camera and video is not
	// disabled); Audio adds the microphone track (when there is an audio
	// engine).
	Video, Audio bool
	// OnState, when set, is told every connection state change, on a
	// goroutine of pion's; it must not block.
	OnState func(webrtc.PeerConnectionState)
}

// Viewer is a receive-only watcher of the device outside calls (a WHEP
// client: a restreamer such as go2rtc, a recorder): one PeerConnection
// built like a call's (codecs, interceptors, ICE settings, the shared UDP
// port) carrying the shared camera and microphone tracks send-only.
// Nothing is encoded for it: it gets the packets every call gets. It is no
// party of any call, rings nobody and never changes a call; it only counts
// as a user of the camera and the microphone, which run while a call or a
// viewer wants them.
//
// Its methods are safe for concurrent use. Close it when done; Media.Close
// closes the viewers still open.
type Viewer struct {
	m     *Media
	pc    *webrtc.PeerConnection
	audio bool // the microphone track was added
	once  sync.Once

	mu        sync.Mutex
	video     bool              // the camera track is carried
	camSender *webrtc.RTPSender // until Answer picks its codec
	codec     string            // CodecH264, CodecVP8 once answered
	release   func()            // lets the VP8 encoder go
}

// NewViewer makes a viewer with the tracks o asks for (and the device has)
// and switches the camera and microphone on for it. It fails with ErrNoMedia
// when it would carry nothing, ErrClosed after Close.
func (m *Media) NewViewer(o ViewerOptions) (*Viewer, error) {
	type result struct {
		v   *Viewer
		err error
	}
	res := make(chan result, 1)
	// PeerConnections are made on the loop (the stats interceptor hands its
	// getter over while one is created; see getterBox).
	m.enqueue(func() {
		v, err := m.openViewer(o)
		res <- result{v, err}
	})
	select {
	case r := <-res:
		return r.v, r.err
	case <-m.loopDone:
		// A viewer made just before is closed by the shutdown.
		return nil, ErrClosed
	}
}

// openViewer runs on the loop.
func (m *Media) openViewer(o ViewerOptions) (*Viewer, error) {
	video := o.Video && m.opts.Camera != nil && !m.opts.DisableVideo
	audio := o.Audio && m.opts.Audio != nil
	if !video && !audio {
		return nil, ErrNoMedia
	}
	pc, err := m.api.NewPeerConnection(webrtc.Configuration{ICEServers: m.opts.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("new viewer connection: %w", err)
	}
	_ = m.getters.take() // viewers are not in Stats
	v := &Viewer{m: m, pc: pc}
	fail := func(err error) (*Viewer, error) {
		_ = pc.Close()
		return nil, err
	}
	if audio {
		s, err := pc.AddTrack(m.micTrack)
		if err != nil {
			return fail(fmt.Errorf("add audio track: %w", err))
		}
		m.drainRTCP(s, nil)
		v.audio = true
	}
	if video {
		// The H.264 track until the offer tells (Answer).
		s, err := pc.AddTrack(m.opts.Camera.Track())
		if err != nil {
			return fail(fmt.Errorf("add video track: %w", err))
		}
		v.camSender = s
		v.video = true
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		v.mu.Lock()
		codec := v.codec
		v.mu.Unlock()
		if s == webrtc.PeerConnectionStateConnected {
			// Its picture starts at the next frame, not the next periodic
			// key frame.
			m.cameraJoined(codec)
		}
		if o.OnState != nil {
			o.OnState(s)
		}
	})
	m.viewers[v] = struct{}{}
	if audio {
		m.startMic()
	}
	m.updateCamera()
	m.log.Info("viewer added", "video", video, "audio", audio, "viewers", len(m.viewers))
	return v, nil
}

// Answer answers a complete offer (all candidates in it, as WHEP sends
// one) with a complete answer: it returns once ICE gathering is done or ctx
// ends. The tracks go on the offer's transceivers of their kind. An offer
// pion cannot apply fails with ErrBadOffer.
func (v *Viewer) Answer(ctx context.Context, offer string) (string, error) {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	if err := v.pickVideo(); err != nil {
		return "", err
	}
	answer, err := v.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("set answer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gather candidates: %w", ctx.Err())
	}
	return v.pc.LocalDescription().SDP, nil
}

// pickVideo gives the viewer the camera's track for the codec its offer
// takes (H.264, else VP8), or none.
func (v *Viewer) pickVideo() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.camSender
	if s == nil {
		return nil
	}
	v.camSender = nil
	m := v.m
	codec := m.pickVideo(v.pc.RemoteDescription(), -1)
	if codec == "" {
		m.log.Warn("the viewer takes neither H.264 nor VP8: no video to it")
		v.video = false
		if err := v.pc.RemoveTrack(s); err != nil {
			return fmt.Errorf("remove video track: %w", err)
		}
		m.enqueue(func() { m.updateCamera() })
		return nil
	}
	if codec == CodecVP8 {
		if err := s.ReplaceTrack(m.cameraTrack(codec)); err != nil {
			return fmt.Errorf("send vp8: %w", err)
		}
	}
	v.codec = codec
	v.release = m.serveCamera(s, codec)
	m.log.Info("video to viewer", "codec", codec)
	return nil
}

// State is the connection's current state.
func (v *Viewer) State() webrtc.PeerConnectionState { return v.pc.ConnectionState() }

// Sends reports which of the tracks the viewer carries.
func (v *Viewer) Sends() (video, audio bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.video, v.audio
}

// Close closes the connection and gives the camera and microphone back (the
// last user switches them off). It is idempotent.
func (v *Viewer) Close() {
	v.once.Do(func() {
		if err := v.pc.Close(); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
			v.m.log.Debug("close viewer connection", "err", err)
		}
		v.mu.Lock()
		if v.release != nil {
			v.release()
		}
		v.mu.Unlock()
		v.m.enqueue(func() { v.m.dropViewer(v) })
	})
}

// dropViewer runs on the loop.
func (m *Media) dropViewer(v *Viewer) {
	if _, ok := m.viewers[v]; !ok {
		return
	}
	delete(m.viewers, v)
	m.log.Info("viewer removed", "viewers", len(m.viewers))
	m.stopMicIfUnused()
	m.updateCamera()
}
