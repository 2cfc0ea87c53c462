package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/intercomd/intercomd/calling"
)

// Errors posted with MediaJoined and MediaFailed.
var (
	// ErrNoMedia: neither audio nor video can run for the call.
	ErrNoMedia = errors.New("no audio engine and no video for the call")
	// ErrPeerLost: a connection did not come back within the restart timeout.
	ErrPeerLost = errors.New("media connection lost")
	// ErrClosed: the Media was closed.
	ErrClosed = errors.New("media closed")
	// ErrBadOffer: a viewer's offer was refused (Viewer.Answer).
	ErrBadOffer = errors.New("offer refused")
)

// fwdPrefix starts the stream ID of a track the hub forwards for a party.
const fwdPrefix = "fwd-"

// maxPendingCandidates bounds the candidates buffered per party.
const maxPendingCandidates = 64

// Options configure a Media.
type Options struct {
	Config
	// Post hands inputs to the calling agent (agent.Agent.Post); required.
	Post func(calling.Input)
	// Audio is the audio engine; nil carries no audio.
	Audio Audio
	// Camera is the shared video pipeline, started by the owner; nil sends
	// no video (video calls still receive it).
	Camera Camera
	// User is this side's user ID; when set, its microphone level is
	// reported as a UserVoiceVolume too.
	User string
	// OnVideoFrame receives every complete H.264 access unit (Annex B)
	// received from a party, from its first key frame on and, after a loss,
	// from the next key frame; called on an RTP reader goroutine, it must
	// not block or retain au.
	OnVideoFrame func(user string, au []byte, at time.Time)
	// OnVP8Frame is as OnVideoFrame for a party that sends VP8 (a browser
	// without H.264): every complete VP8 frame, from a key frame on.
	OnVP8Frame func(user string, frame []byte, at time.Time)
	// Net replaces the operating system's network (a pion vnet in tests).
	Net    transport.Net
	Logger *slog.Logger
}

// Media is the WebRTC media layer. Create with New; it implements
// agent.Media.
type Media struct {
	opts     Options
	log      *slog.Logger
	api      *webrtc.API
	getters  *getterBox
	mux      ice.UDPMux
	micTrack *webrtc.TrackLocalStaticSample

	ctx      context.Context
	cancel   context.CancelFunc
	loopDone chan struct{}
	wg       sync.WaitGroup // RTP and RTCP readers
	once     sync.Once

	qmu    sync.Mutex
	queue  []func()
	wake   chan struct{}
	closed bool

	statsMu sync.Mutex
	stats   []PeerStats

	// Owned by the loop.
	calls      map[string]*call
	parties    map[*partyEntry]struct{}
	micOn      bool
	cameraOn   bool            // as last switched
	cameraWant bool            // as the calls want it
	cameraBusy bool            // a switch is under way off the loop
	remoteView map[string]bool // remote view wishes, by user (recorded only)
	viewers    map[*Viewer]struct{}
}

type call struct {
	id    string
	typ   calling.CallType
	hub   string
	isHub bool
	video bool // video is sent and received
	// preview (party side): the hub's media is previewed before joining
	// (early media); nothing local is sent until JoinMedia.
	preview bool
	peers   map[peerKey]*peer
	pending map[peerKey][]webrtc.ICECandidateInit
	fwd     map[string]*forward // hub: forwarding tracks, by source party
}

// peerKey names the other end of a connection: a party's device (user and
// login session). A hub has one connection per device, so that several
// devices of one user can preview a call and the one that answers keeps
// its media when the others stop.
type peerKey struct{ user, session string }

// party returns the peer of user's device in the call (not a preview), nil
// if there is none.
func (c *call) party(user string) *peer {
	for _, p := range c.peers {
		if p.user == user && !p.preview {
			return p
		}
	}
	return nil
}

// forward holds the tracks a hub forwards one party's media on.
type forward struct {
	audio, video *webrtc.TrackLocalStaticRTP
}

type partyEntry struct {
	call, user string
	party      AudioParty
}

// New checks the configuration, builds the pion API (and the shared UDP
// port, if configured) and starts the loop.
func New(opts Options) (*Media, error) {
	if opts.Post == nil {
		return nil, errors.New("media: options: Post is required")
	}
	opts.Config = opts.Config.WithDefaults()
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("media config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	box := &getterBox{}
	api, mux, err := buildAPI(opts.Config, opts.Net, box)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	mic, err := webrtc.NewTrackLocalStaticSample(opusCapability(), "audio", "intercomd")
	if err != nil {
		if mux != nil {
			_ = mux.Close()
		}
		return nil, fmt.Errorf("media: create audio track: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Media{
		opts:       opts,
		log:        opts.Logger.With("component", "media"),
		api:        api,
		getters:    box,
		mux:        mux,
		micTrack:   mic,
		ctx:        ctx,
		cancel:     cancel,
		loopDone:   make(chan struct{}),
		wake:       make(chan struct{}, 1),
		calls:      map[string]*call{},
		parties:    map[*partyEntry]struct{}{},
		remoteView: map[string]bool{},
		viewers:    map[*Viewer]struct{}{},
	}
	if opts.Audio == nil {
		m.log.Warn("no audio engine: calls carry no sound")
	}
	if opts.Camera == nil && !opts.DisableVideo {
		m.log.Info("no camera: video calls send no picture")
	}
	go m.loop()
	return m, nil
}

// Do implements agent.Media: it queues e for the loop and returns.
func (m *Media) Do(e calling.MediaEffect) {
	m.enqueue(func() { m.handle(e) })
}

// Close ends every call's media, stops the loop and joins every goroutine.
// It is idempotent.
func (m *Media) Close() error {
	m.once.Do(func() {
		m.cancel()
		<-m.loopDone
		m.wg.Wait()
		if m.mux != nil {
			_ = m.mux.Close()
		}
	})
	return nil
}

// Stats returns the call quality of every peer as last measured.
func (m *Media) Stats() []PeerStats {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	return append([]PeerStats(nil), m.stats...)
}

// MicTrack returns the shared microphone track (for tests and metrics).
func (m *Media) MicTrack() *webrtc.TrackLocalStaticSample { return m.micTrack }

// enqueue hands fn to the loop without blocking; after Close it is dropped.
func (m *Media) enqueue(fn func()) {
	m.qmu.Lock()
	if m.closed {
		m.qmu.Unlock()
		return
	}
	m.queue = append(m.queue, fn)
	m.qmu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Media) post(in calling.Input) { m.opts.Post(in) }

func (m *Media) loop() {
	defer close(m.loopDone)
	stats := time.NewTicker(m.opts.StatsInterval)
	defer stats.Stop()
	for {
		select {
		case <-m.ctx.Done():
			m.qmu.Lock()
			m.closed = true
			m.queue = nil
			m.qmu.Unlock()
			m.shutdown()
			return
		case <-m.wake:
			for {
				m.qmu.Lock()
				q := m.queue
				m.queue = nil
				m.qmu.Unlock()
				if len(q) == 0 {
					break
				}
				for _, fn := range q {
					fn()
				}
			}
		case <-stats.C:
			m.collectStats()
		}
	}
}

func (m *Media) shutdown() {
	for id := range m.calls {
		m.leave(id)
	}
	for v := range m.viewers {
		_ = v.pc.Close()
		delete(m.viewers, v)
	}
	if m.micOn && m.opts.Audio != nil {
		m.opts.Audio.SetMicOutput(nil)
		m.micOn = false
	}
}

func (m *Media) handle(e calling.MediaEffect) {
	switch e := e.(type) {
	case calling.JoinMedia:
		m.join(e)
	case calling.ConnectPeer:
		m.connectPeer(e)
	case calling.DisconnectPeer:
		if c := m.calls[e.Call]; c != nil {
			m.dropPeer(c, peerKey{e.User, e.Session})
		}
	case calling.LeaveMedia:
		m.leave(e.Call)
	case calling.Signal:
		m.signal(e)
	case calling.Ring:
		if m.opts.Audio != nil {
			m.opts.Audio.Ring(e.Tone)
		}
	case calling.SetVideo:
		m.setVideo(e.Call, e.On)
	case calling.MediaControl:
		m.control(e)
	default:
		m.log.Warn("unknown media request", "request", fmt.Sprintf("%T", e))
	}
}

// --- local media ---

func newCall(id string) *call {
	return &call{
		id:      id,
		peers:   map[peerKey]*peer{},
		pending: map[peerKey][]webrtc.ICECandidateInit{},
		fwd:     map[string]*forward{},
	}
}

func (m *Media) join(e calling.JoinMedia) {
	c := m.calls[e.Call]
	if c != nil && !c.preview {
		m.post(calling.MediaJoined{Call: e.Call})
		return
	}
	video := e.Type == calling.Video && !m.opts.DisableVideo
	receivesVideo := video && (m.opts.Camera != nil || m.opts.OnVideoFrame != nil || m.opts.OnVP8Frame != nil)
	if m.opts.Audio == nil && !receivesVideo {
		m.post(calling.MediaJoined{Call: e.Call, Err: ErrNoMedia})
		return
	}
	if c == nil {
		c = newCall(e.Call)
		m.calls[e.Call] = c
	}
	// A previewed call keeps its connection with the hub: the hub's next
	// offer renegotiates it and the answer adds the local tracks.
	c.preview = false
	c.typ, c.hub, c.isHub, c.video = e.Type, e.Hub, e.IsHub, video
	m.startMic()
	if c.video {
		m.updateCamera()
	}
	m.log.Info("media joined", "call", c.id, "type", c.typ.String(), "hub", c.hub, "is_hub", c.isHub,
		"video", c.video, "audio", m.opts.Audio != nil, "camera", m.opts.Camera != nil && c.video)
	m.post(calling.MediaJoined{Call: e.Call})
}

func (m *Media) startMic() {
	if m.micOn || m.opts.Audio == nil {
		return
	}
	m.micOn = true
	track := m.micTrack
	// Voice levels are reported on the microphone's clock, every
	// LevelInterval of encoded audio, in the same burst of work as the
	// frame: a ticker of their own would wake the process for them alone.
	var since time.Duration
	m.opts.Audio.SetMicOutput(func(packet []byte, d time.Duration) {
		_ = track.WriteSample(pmedia.Sample{Data: packet, Duration: d})
		if since += d; since >= m.opts.LevelInterval {
			since = 0
			m.enqueue(m.reportLevels)
		}
	})
}

// cameraTimeout bounds one switch of the camera (on, off, to another
// source): opening a V4L2 device and starting the encoder can take seconds.
const cameraTimeout = 10 * time.Second

// updateCamera switches the camera on while some call or viewer sends
// video, off otherwise. The switch runs off the loop, one at a time, and reports back
// to the loop when done (cameraSwitched): the loop never waits for the
// device.
func (m *Media) updateCamera() {
	if m.opts.Camera == nil {
		return
	}
	want := false
	for _, c := range m.calls {
		want = want || c.video
	}
	for v := range m.viewers {
		vid, _ := v.Sends()
		want = want || vid
	}
	m.cameraWant = want
	if want == m.cameraOn || m.cameraBusy {
		return
	}
	m.cameraBusy = true
	m.offLoop(func(ctx context.Context) func() {
		err := m.opts.Camera.SetEnabled(ctx, want)
		return func() { m.cameraSwitched(want, err) }
	})
}

// cameraSwitched runs on the loop when a switch is done; the calls may
// want another by now.
func (m *Media) cameraSwitched(on bool, err error) {
	m.cameraBusy = false
	if err != nil {
		m.log.Warn("camera switch failed", "on", on, "err", err)
	}
	m.cameraOn = on
	if m.cameraWant != on {
		m.updateCamera()
	}
}

// offLoop runs work on a goroutine of its own under cameraTimeout and
// queues the function it returns to the loop. Close cancels and joins it.
func (m *Media) offLoop(work func(ctx context.Context) func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, cameraTimeout)
		defer cancel()
		m.enqueue(work(ctx))
	}()
}

func (m *Media) leave(id string) {
	c := m.calls[id]
	if c == nil {
		return
	}
	for k := range c.peers {
		m.closePeer(c, k)
	}
	for e := range m.parties {
		if e.call == id {
			e.party.Close()
			delete(m.parties, e)
		}
	}
	delete(m.calls, id)
	m.log.Info("media left", "call", id)
	m.stopMicIfUnused()
	m.updateCamera()
}

// stopMicIfUnused stops the microphone when no call and no viewer needs it.
func (m *Media) stopMicIfUnused() {
	if len(m.calls) > 0 || !m.micOn || m.opts.Audio == nil {
		return
	}
	for v := range m.viewers {
		if v.audio {
			return
		}
	}
	m.opts.Audio.SetMicOutput(nil)
	m.micOn = false
}

func (m *Media) setVideo(id string, on bool) {
	c := m.calls[id]
	if c == nil || c.video == on {
		return
	}
	if on && (c.typ != calling.Video || m.opts.DisableVideo) {
		return
	}
	c.video = on
	for _, p := range c.peers {
		if p.camSender == nil {
			continue
		}
		var t webrtc.TrackLocal
		if on {
			t = m.cameraTrack(p.camCodec)
		}
		if err := p.camSender.ReplaceTrack(t); err != nil {
			m.log.Warn("replace video track", "user", p.user, "err", err)
		}
	}
	m.log.Info("video", "call", id, "on", on)
	m.updateCamera()
}

func (m *Media) control(e calling.MediaControl) {
	switch e.Kind {
	case calling.ControlCamera:
		for id := range m.calls {
			m.setVideo(id, e.On)
		}
	case calling.ControlSwitchCamera:
		name := m.opts.CameraBack
		if e.Front {
			name = m.opts.CameraFront
		}
		if name == "" || m.opts.Camera == nil {
			m.log.Info("camera switch ignored: no such camera", "front", e.Front)
			return
		}
		m.offLoop(func(ctx context.Context) func() {
			if err := m.opts.Camera.Switch(ctx, name); err != nil {
				m.log.Warn("camera switch", "to", name, "err", err)
			}
			return func() {}
		})
	case calling.ControlMicMute:
		if m.opts.Audio != nil {
			m.opts.Audio.SetMicMute(e.On)
		}
	case calling.ControlHandsFree:
		if m.opts.Audio != nil {
			m.opts.Audio.SetHandsFree(e.On)
		}
	case calling.ControlRemoteView:
		// There is no screen on the device: the wish is only recorded.
		m.remoteView[e.User] = e.On
	}
}

// --- levels and stats ---

func (m *Media) reportLevels() {
	for e := range m.parties {
		m.post(calling.MediaStatus{Call: e.call, Event: calling.UserVoiceVolume{User: e.user, Volume: e.party.Level()}})
	}
	if m.opts.User != "" && m.opts.Audio != nil && m.micOn {
		lvl := m.opts.Audio.MicLevel()
		for id := range m.calls {
			m.post(calling.MediaStatus{Call: id, Event: calling.UserVoiceVolume{User: m.opts.User, Volume: lvl}})
		}
	}
}
