package media

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
)

// peer is one PeerConnection of a call, with the party at its other end.
// Loop-owned, except the fields readers are handed at start.
type peer struct {
	call    *call
	user    string
	session string // the party's device (login session)
	pc      *webrtc.PeerConnection

	closed      bool
	remoteSet   bool // a remote description was applied
	tracksAdded bool // party side: local tracks attached to the offer's transceivers
	needOffer   bool // hub: renegotiate once the current offer is answered
	needRestart bool
	offerIsICE  bool // hub: the offer last sent was an ICE restart
	joined      bool // PeerJoined posted
	// preview: early media, no PeerJoined yet. Hub: the party previews
	// (ConnectPeer with Preview) until a ConnectPeer without it. Party: the
	// connection was made before joining and has no local tracks yet.
	preview     bool
	connected   bool
	lastRestart time.Time
	downTimer   *time.Timer
	retryTimer  *time.Timer // hub: repeats ICE restarts while down
	camSender   *webrtc.RTPSender
	// camCodec is what camSender carries (CodecH264, CodecVP8), "" until
	// the party's description has told (hub: its first answer).
	camCodec     string
	camRelease   func()                         // lets the VP8 encoder go; nil if not held
	fwdSenders   map[string][]*webrtc.RTPSender // hub: forwarded parties' senders
	videoSSRC    uint32                         // remote video, for PLI passed on
	lastPLI      time.Time
	prev         statSample
	stats        stats.Getter // nil if the stats interceptor gave none
	lastDownFrom webrtc.PeerConnectionState
}

// stopTimers stops the peer's ICE timers: it is connected again, or closed.
func (p *peer) stopTimers() {
	for _, t := range []**time.Timer{&p.downTimer, &p.retryTimer} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

func (p *peer) key() peerKey { return peerKey{p.user, p.session} }

func (m *Media) newPeer(c *call, k peerKey) (*peer, error) {
	pc, err := m.api.NewPeerConnection(webrtc.Configuration{ICEServers: m.opts.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("new peer connection for %s: %w", k.user, err)
	}
	p := &peer{call: c, user: k.user, session: k.session, pc: pc, stats: m.getters.take(), fwdSenders: map[string][]*webrtc.RTPSender{}, preview: c.preview}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		m.enqueue(func() { m.localCandidate(p, init) })
	})
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		m.enqueue(func() { m.stateChanged(p) })
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		m.enqueue(func() { m.remoteTrack(p, tr, rcv) })
	})
	c.peers[k] = p
	m.armDownTimer(p)
	return p, nil
}

// connectPeer (hub) creates the PeerConnection of the party's device and
// offers. For a preview the party gets this side's tracks only (it is not
// forwarded and gets no forwarding); when a previewing device then joins,
// its connection is kept and renegotiated.
func (m *Media) connectPeer(e calling.ConnectPeer) {
	c := m.calls[e.Call]
	if c == nil || !c.isHub {
		m.log.Warn("connect peer: no such call as hub", "call", e.Call, "user", e.User)
		return
	}
	k := peerKey{e.User, e.Session}
	if old := c.peers[k]; old != nil {
		switch {
		case e.Preview:
			m.log.Debug("connect peer: already connected for a preview", "call", c.id, "user", e.User, "session", e.Session)
			return
		case old.preview:
			old.preview = false
			m.log.Info("previewing peer joins on its connection", "call", c.id, "user", e.User, "session", e.Session)
			m.forwardParty(c, old)
			m.negotiate(old, false)
			return
		}
		m.closePeer(c, k)
	}
	p, err := m.newPeer(c, k)
	if err != nil {
		m.log.Warn("connect peer", "err", err)
		m.post(calling.PeerLeft{Call: c.id, User: e.User, Session: e.Session, Reason: calling.ReasonMedia})
		return
	}
	p.preview = e.Preview
	if err := m.addLocalTracks(p, true); err != nil {
		m.log.Warn("connect peer: add tracks", "user", e.User, "err", err)
		m.closePeer(c, k)
		m.post(calling.PeerLeft{Call: c.id, User: e.User, Session: e.Session, Reason: calling.ReasonMedia})
		return
	}
	if !p.preview {
		m.forwardParty(c, p)
	}
	m.negotiate(p, false)
}

// forwardParty (hub) forwards party p to the other parties and them to p,
// renegotiating with the others. Every party gets forwarding tracks (bound
// to nobody in a 1-to-1 call); previewing parties are left out.
func (m *Media) forwardParty(c *call, p *peer) {
	m.ensureForward(c, p.user)
	for _, q := range c.peers {
		if q.user == p.user || q.preview {
			continue
		}
		m.ensureForward(c, q.user)
		m.addForward(q, p.user)
		m.addForward(p, q.user)
		m.negotiate(q, false)
	}
}

// markJoined posts PeerJoined the first time p is connected outside a
// preview.
func (m *Media) markJoined(p *peer) {
	if p.joined || p.preview || !p.connected || p.closed {
		return
	}
	p.joined = true
	m.post(calling.PeerJoined{Call: p.call.id, User: p.user, Session: p.session})
}

// addLocalTracks adds the microphone and camera tracks. The hub adds them
// (and a receive-only video transceiver without a camera) to a fresh
// PeerConnection; a party attaches them to the offer's transceivers.
func (m *Media) addLocalTracks(p *peer, hub bool) error {
	c := p.call
	if m.opts.Audio != nil {
		s, err := p.pc.AddTrack(m.micTrack)
		if err != nil {
			return fmt.Errorf("add audio track: %w", err)
		}
		m.drainRTCP(s, nil)
	} else if hub {
		if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("add audio transceiver: %w", err)
		}
	}
	if !c.video {
		return nil
	}
	codec := CodecH264 // the hub's offer lists every codec; its answer picks
	if !hub {
		codec = m.pickVideo(p.pc.RemoteDescription(), -1)
	}
	if m.opts.Camera != nil && codec == "" {
		// A party that takes neither H.264 nor VP8: the call goes on with
		// sound only.
		m.log.Warn("the party offers neither H.264 nor VP8: no video to it", "user", p.user)
	} else if m.opts.Camera != nil {
		s, err := p.pc.AddTrack(m.cameraTrack(codec))
		if err != nil {
			return fmt.Errorf("add video track: %w", err)
		}
		p.camSender = s
		if !hub {
			m.useCamera(p, codec)
		}
	} else if hub {
		if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("add video transceiver: %w", err)
		}
	}
	return nil
}

// useCamera records that p's camera sender carries codec and serves it.
func (m *Media) useCamera(p *peer, codec string) {
	p.camCodec = codec
	p.camRelease = m.serveCamera(p.camSender, codec)
	m.log.Info("video to party", "call", p.call.id, "user", p.user, "session", p.session, "codec", codec)
}

// answerVideo (hub) chooses, on the party's first answer, which of the
// camera's tracks it gets: the H.264 one the offer carried, the VP8 one,
// or none (its sender removed) when the answer takes neither.
func (m *Media) answerVideo(p *peer, answer *webrtc.SessionDescription) {
	if p.camSender == nil || p.camCodec != "" {
		return
	}
	codec := m.pickVideo(answer, senderSection(p.pc, p.camSender))
	if codec != CodecH264 {
		m.dropForwardedVideo(p)
	}
	switch codec {
	case "":
		m.log.Warn("the party takes neither H.264 nor VP8: no video to it", "user", p.user, "session", p.session)
		if err := p.pc.RemoveTrack(p.camSender); err != nil {
			m.log.Debug("remove video track", "err", err)
		}
		p.camSender = nil
	case CodecVP8:
		// Before the answer is applied: the sender starts with it.
		if err := p.camSender.ReplaceTrack(m.cameraTrack(codec)); err != nil {
			m.log.Warn("replace video track with vp8", "user", p.user, "err", err)
		}
		fallthrough
	default:
		m.useCamera(p, codec)
	}
}

// dropForwardedVideo (hub) removes the forwarded videos from a party that
// takes no H.264, before its answer is applied: the parties' video is
// forwarded as they send it, H.264, which it could not decode (and pion
// cannot start a track in a codec the connection did not negotiate). It
// keeps hearing them.
func (m *Media) dropForwardedVideo(p *peer) {
	for src, ss := range p.fwdSenders {
		keep := ss[:0]
		for _, s := range ss {
			if t := s.Track(); t != nil && t.Kind() == webrtc.RTPCodecTypeVideo {
				if err := p.pc.RemoveTrack(s); err != nil {
					m.log.Debug("remove forwarded video", "to", p.user, "from", src, "err", err)
				}
				continue
			}
			keep = append(keep, s)
		}
		p.fwdSenders[src] = keep
	}
}

// drainRTCP reads the RTCP of a sender or a receiver until it stops, on a
// goroutine Close joins; onPLI, if set, is called (from the reader) for
// every PLI or FIR. A receiver's RTCP matters to nobody here, but pion's
// interceptors only see what is read: the party's sender reports reach the
// receiver-report interceptor this way, so the receiver reports this side
// sends carry the LSR and DLSR from which the party computes its round-trip
// time (and the stats interceptor sees the party's sender reports).
func (m *Media) drainRTCP(r camera.RTCPReader, onPLI func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := camera.ReadRTCP(r, onPLI); err != nil {
			m.log.Debug("rtcp reader ended", "err", err)
		}
	}()
}

// ensureForward creates the forwarding tracks of party user (hub).
func (m *Media) ensureForward(c *call, user string) {
	if c.fwd[user] != nil {
		return
	}
	f := &forward{}
	var err error
	f.audio, err = webrtc.NewTrackLocalStaticRTP(opusCapability(), "audio-"+user, fwdPrefix+user)
	if err != nil {
		m.log.Warn("forward track", "user", user, "err", err)
		return
	}
	if c.video {
		f.video, err = webrtc.NewTrackLocalStaticRTP(m.videoCodec(), "video-"+user, fwdPrefix+user)
		if err != nil {
			m.log.Warn("forward track", "user", user, "err", err)
			f.video = nil
		}
	}
	c.fwd[user] = f
}

// addForward adds party src's forwarding tracks, send-only, to p.
func (m *Media) addForward(p *peer, src string) {
	f := p.call.fwd[src]
	if f == nil || len(p.fwdSenders[src]) > 0 {
		return
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{f.audio, f.video} {
		if t == nil || (t == f.video && p.camCodec == CodecVP8) {
			// Forwarded video is H.264 as the parties send it; a party
			// that takes VP8 only gets the others' sound.
			continue
		}
		tr, err := p.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			m.log.Warn("add forwarded track", "to", p.user, "from", src, "err", err)
			continue
		}
		s := tr.Sender()
		p.fwdSenders[src] = append(p.fwdSenders[src], s)
		var onPLI func()
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			c := p.call
			onPLI = func() { m.enqueue(func() { m.passPLI(c, src) }) }
		}
		m.drainRTCP(s, onPLI)
	}
}

// removeForward removes party src's forwarding tracks from p.
func (m *Media) removeForward(p *peer, src string) bool {
	ss := p.fwdSenders[src]
	delete(p.fwdSenders, src)
	for _, s := range ss {
		if err := p.pc.RemoveTrack(s); err != nil {
			m.log.Debug("remove forwarded track", "to", p.user, "from", src, "err", err)
		}
	}
	return len(ss) > 0
}

// passPLI asks party src for a key frame of the video the hub forwards.
func (m *Media) passPLI(c *call, src string) {
	p := c.party(src)
	if p == nil || p.closed || p.videoSSRC == 0 || time.Since(p.lastPLI) < 300*time.Millisecond {
		return
	}
	p.lastPLI = time.Now()
	_ = p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: p.videoSSRC}})
}

func (m *Media) videoCodec() webrtc.RTPCodecCapability {
	if m.opts.Camera != nil {
		return m.opts.Camera.Track().Codec()
	}
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
}

// negotiate (hub) sends an offer, or remembers to once the current one is
// answered.
func (m *Media) negotiate(p *peer, restart bool) {
	if p.closed {
		return
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.needOffer = true
		p.needRestart = p.needRestart || restart
		return
	}
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		m.log.Warn("create offer", "user", p.user, "restart", restart, "err", err)
		return
	}
	if restart {
		p.lastRestart = time.Now()
	}
	p.offerIsICE = restart
	m.log.Debug("offer", "call", p.call.id, "user", p.user, "restart", restart)
	m.post(calling.MediaOut{Call: p.call.id, To: p.user, Session: p.session, Msg: calling.Message{Type: calling.MsgOffer, SDP: offer.SDP, Restart: restart}})
}

func (m *Media) localCandidate(p *peer, init webrtc.ICECandidateInit) {
	if p.closed {
		return
	}
	m.post(calling.MediaOut{Call: p.call.id, To: p.user, Session: p.session, Msg: calling.Message{
		Type:      calling.MsgCandidate,
		Candidate: &calling.Candidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex},
	}})
}

// signal applies an offer, answer or candidate from a party's device.
func (m *Media) signal(e calling.Signal) {
	k := peerKey{e.From, e.Session}
	c := m.calls[e.Call]
	if c == nil && e.Msg.Type != calling.MsgOffer {
		m.log.Debug("signal for no call dropped", "call", e.Call, "type", e.Msg.Type.String())
		return
	}
	switch e.Msg.Type {
	case calling.MsgOffer:
		if c == nil {
			c = m.previewCall(e.Call, e.From)
		}
		m.offer(c, k, e.Msg)
	case calling.MsgAnswer:
		p := c.peers[k]
		if p == nil || p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			m.log.Debug("unexpected answer dropped", "from", e.From)
			return
		}
		answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: keepRefusedCodecs(e.Msg.SDP, p.pc.LocalDescription())}
		m.answerVideo(p, &answer)
		if err := p.pc.SetRemoteDescription(answer); err != nil {
			m.log.Warn("apply answer", "from", e.From, "err", err)
			return
		}
		p.remoteSet = true
		m.flushCandidates(c, p)
		if p.needOffer {
			restart := p.needRestart
			p.needOffer, p.needRestart = false, false
			m.negotiate(p, restart)
			return
		}
		// A party that previewed is connected already: it is present once
		// the renegotiation that made it a party is done.
		m.markJoined(p)
	case calling.MsgCandidate:
		if e.Msg.Candidate == nil {
			return
		}
		init := webrtc.ICECandidateInit{Candidate: e.Msg.Candidate.Candidate, SDPMid: e.Msg.Candidate.SDPMid, SDPMLineIndex: e.Msg.Candidate.SDPMLineIndex}
		p := c.peers[k]
		if p == nil || !p.remoteSet || p.pc.SignalingState() != webrtc.SignalingStateStable {
			if len(c.pending[k]) < maxPendingCandidates {
				c.pending[k] = append(c.pending[k], init)
			}
			return
		}
		if err := p.pc.AddICECandidate(init); err != nil {
			m.log.Debug("add candidate", "from", e.From, "err", err)
		}
	}
}

// previewCall (party side) holds the connection a hub offers before this
// side joined the call: the calling core passes media messages for a call
// not joined only when it asked for a preview. The answer is receive-only.
func (m *Media) previewCall(id, hub string) *call {
	c := newCall(id)
	c.hub, c.preview = hub, true
	m.calls[id] = c
	m.log.Info("media preview", "call", id, "hub", hub)
	return c
}

// offer (party side) answers the hub's offer, creating the PeerConnection
// for the first one. In a preview it answers without local tracks; the
// first offer after joining gets them, on the transceivers the first offer
// made (pion's AddTrack reuses a transceiver that has never sent).
func (m *Media) offer(c *call, k peerKey, msg calling.Message) {
	from := k.user
	if c.isHub || from != c.hub {
		m.log.Debug("offer from a non-hub dropped", "from", from)
		return
	}
	p := c.peers[k]
	if p == nil {
		var err error
		if p, err = m.newPeer(c, k); err != nil {
			m.log.Warn("answer hub", "err", err)
			m.post(calling.MediaFailed{Call: c.id, Err: err})
			return
		}
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: msg.SDP}); err != nil {
		m.log.Warn("apply offer", "from", from, "err", err)
		m.answerFailed(p, fmt.Errorf("apply offer: %w", err))
		return
	}
	p.remoteSet = true
	if !p.tracksAdded && !c.preview {
		p.tracksAdded = true
		if err := m.addLocalTracks(p, false); err != nil {
			m.log.Warn("answer hub: add tracks", "err", err)
		}
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		m.log.Warn("create answer", "to", from, "err", err)
		m.answerFailed(p, fmt.Errorf("create answer: %w", err))
		return
	}
	m.log.Debug("answer", "call", c.id, "to", from, "restart", msg.Restart, "preview", c.preview)
	m.post(calling.MediaOut{Call: c.id, To: from, Session: k.session, Msg: calling.Message{Type: calling.MsgAnswer, SDP: answer.SDP}})
	m.flushCandidates(c, p)
	if !c.preview {
		p.preview = false
		m.markJoined(p)
	}
}

// answerFailed (party side) ends the call's media on an offer that cannot
// be answered before the party joined; a preview that fails only ends the
// preview (the phone still rings, and answering starts over).
func (m *Media) answerFailed(p *peer, err error) {
	switch {
	case p.call.preview:
		m.dropPeer(p.call, p.key())
	case !p.joined:
		m.post(calling.MediaFailed{Call: p.call.id, Err: err})
	}
}

func (m *Media) flushCandidates(c *call, p *peer) {
	for _, init := range c.pending[p.key()] {
		if err := p.pc.AddICECandidate(init); err != nil {
			m.log.Debug("add candidate", "from", p.user, "err", err)
		}
	}
	delete(c.pending, p.key())
}

// stateChanged reacts to the connection's current state (callbacks arrive
// out of order, so their argument is not trusted).
func (m *Media) stateChanged(p *peer) {
	if p.closed {
		return
	}
	c := p.call
	st := p.pc.ConnectionState()
	switch st {
	case webrtc.PeerConnectionStateConnected:
		p.stopTimers()
		if !p.connected {
			p.connected = true
			m.log.Info("peer connected", "call", c.id, "user", p.user, "session", p.session)
			if m.opts.Camera != nil && p.camSender != nil && c.video {
				m.cameraJoined(p.camCodec)
			}
		}
		m.markJoined(p)
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
		if p.connected || st != p.lastDownFrom {
			m.log.Warn("peer connection down", "call", c.id, "user", p.user, "state", st.String())
		}
		p.connected = false
		p.lastDownFrom = st
		m.armDownTimer(p)
		if c.isHub {
			m.restartICE(p)
		}
	case webrtc.PeerConnectionStateClosed:
		m.peerLost(p, "connection closed")
	}
}

// restartInterval spaces the ICE restarts a hub makes while a connection
// stays down: the candidate pairs of one attempt fail after a few seconds of
// unanswered checks, so a link that comes back later needs a new attempt.
const restartInterval = 4 * time.Second

// restartICE (hub) offers an ICE restart now, unless one was just made, and
// again every restartInterval while the connection is down.
func (m *Media) restartICE(p *peer) {
	if p.closed || p.connected {
		return
	}
	if time.Since(p.lastRestart) > time.Second {
		if p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			m.resendOffer(p)
		} else {
			m.negotiate(p, true)
		}
	}
	if p.retryTimer == nil {
		p.retryTimer = time.AfterFunc(restartInterval, func() {
			m.enqueue(func() {
				p.retryTimer = nil
				m.restartICE(p)
			})
		})
	}
}

// resendOffer (hub) sends the unanswered offer again, with the candidates
// gathered since (an ICE restart follows the answer if it was not one). A party
// whose link dropped misses what was sent meanwhile (signaling keeps nothing
// for a client that was away); without this, the first restart offer would
// be the only one until the restart timeout.
func (m *Media) resendOffer(p *peer) {
	d := p.pc.LocalDescription()
	if d == nil {
		return
	}
	if !p.offerIsICE { // a renegotiation: restart ICE once it is answered
		p.needOffer, p.needRestart = true, true
	}
	p.lastRestart = time.Now()
	m.log.Debug("offer again", "call", p.call.id, "user", p.user, "restart", p.offerIsICE)
	m.post(calling.MediaOut{Call: p.call.id, To: p.user, Session: p.session, Msg: calling.Message{Type: calling.MsgOffer, SDP: d.SDP, Restart: p.offerIsICE}})
}

// armDownTimer starts the timer that gives up on a connection that is not
// (or no longer) connected.
func (m *Media) armDownTimer(p *peer) {
	if p.downTimer != nil {
		return
	}
	p.downTimer = time.AfterFunc(m.opts.ICERestartTimeout, func() {
		m.enqueue(func() {
			if p.closed || p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
				return
			}
			p.downTimer = nil
			m.peerLost(p, fmt.Sprintf("not connected within %s", m.opts.ICERestartTimeout))
		})
	})
}

// peerLost gives up on p: the hub drops the party, a party fails the call.
func (m *Media) peerLost(p *peer, why string) {
	if p.closed {
		return
	}
	c := p.call
	m.log.Warn("peer lost", "call", c.id, "user", p.user, "session", p.session, "why", why, "preview", p.preview)
	m.dropPeer(c, p.key())
	if c.preview {
		return // only the preview ends; the phone still rings
	}
	if c.isHub {
		m.post(calling.PeerLeft{Call: c.id, User: p.user, Session: p.session, Reason: calling.ReasonMedia})
	} else {
		m.post(calling.MediaFailed{Call: c.id, Err: fmt.Errorf("media with %s: %s: %w", p.user, why, ErrPeerLost)})
	}
}

// dropPeer closes the PeerConnection of a party's device and, on a hub,
// stops forwarding the party to the others unless it only previewed (a
// preview is neither forwarded nor sent the others: the user's device in
// the call, if any, goes on).
func (m *Media) dropPeer(c *call, k peerKey) {
	p := c.peers[k]
	if p == nil {
		return
	}
	m.closePeer(c, k)
	delete(c.pending, k)
	if !c.isHub || p.preview {
		return
	}
	for _, q := range c.peers {
		if m.removeForward(q, k.user) {
			m.negotiate(q, false)
		}
	}
	delete(c.fwd, k.user)
}

func (m *Media) closePeer(c *call, k peerKey) {
	p := c.peers[k]
	if p == nil {
		return
	}
	p.closed = true
	p.stopTimers()
	if p.camRelease != nil {
		p.camRelease()
	}
	delete(c.peers, k)
	if err := p.pc.Close(); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
		m.log.Debug("close peer connection", "user", k.user, "err", err)
	}
	m.log.Info("peer closed", "call", c.id, "user", k.user, "session", k.session, "preview", p.preview)
}

// remoteTrack starts reading a track a party sends (or the hub forwards),
// and the RTCP that comes with it.
func (m *Media) remoteTrack(p *peer, tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	c := p.call
	if p.closed {
		return
	}
	m.drainRTCP(rcv, nil)
	user, forwarded := p.user, false
	if sid := tr.StreamID(); strings.HasPrefix(sid, fwdPrefix) && !c.isHub {
		user, forwarded = strings.TrimPrefix(sid, fwdPrefix), true
	}
	var fwd *webrtc.TrackLocalStaticRTP
	if c.isHub && !forwarded && !p.preview {
		if f := c.fwd[user]; f != nil {
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				fwd = f.audio
			} else {
				fwd = f.video
			}
		}
	}
	m.log.Info("remote track", "call", c.id, "user", user, "kind", tr.Kind().String(), "via", p.user)
	switch tr.Kind() {
	case webrtc.RTPCodecTypeAudio:
		var entry *partyEntry
		if m.opts.Audio != nil {
			party, err := m.opts.Audio.AddParty(user)
			if err != nil {
				m.log.Warn("audio party", "user", user, "err", err)
			} else {
				entry = &partyEntry{call: c.id, user: user, party: party}
				m.parties[entry] = struct{}{}
			}
		}
		m.post(calling.MediaStatus{Call: c.id, Event: calling.UserAudioAvailable{User: user, Available: true}})
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			readAudio(tr, entry, fwd)
			m.enqueue(func() {
				if entry != nil {
					entry.party.Close()
					delete(m.parties, entry)
				}
				if m.calls[c.id] == c {
					m.post(calling.MediaStatus{Call: c.id, Event: calling.UserAudioAvailable{User: user, Available: false}})
				}
			})
		}()
	case webrtc.RTPCodecTypeVideo:
		if !forwarded {
			p.videoSSRC = uint32(tr.SSRC())
		}
		m.post(calling.MediaStatus{Call: c.id, Event: calling.UserVideoAvailable{User: user, Available: true}})
		onFrame := m.opts.OnVideoFrame
		if strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeVP8) {
			onFrame = m.opts.OnVP8Frame
		}
		r := &videoReader{pc: p.pc, track: tr, user: user, fwd: fwd, onFrame: onFrame}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			r.run()
			m.enqueue(func() {
				if m.calls[c.id] == c {
					m.post(calling.MediaStatus{Call: c.id, Event: calling.UserVideoAvailable{User: user, Available: false}})
				}
			})
		}()
	}
}
