package media

import (
	"strings"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/intercomd/intercomd/hw/camera"
)

// readAudio pushes a remote audio track's packets into its party's jitter
// buffer and forwards them (hub) until the track ends.
func readAudio(tr *webrtc.TrackRemote, entry *partyEntry, fwd *webrtc.TrackLocalStaticRTP) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if entry != nil {
			entry.party.Push(pkt.SequenceNumber, pkt.Timestamp, pkt.Payload)
		}
		if fwd != nil {
			forwardRTP(fwd, pkt)
		}
	}
}

// forwardRTP writes pkt to the forwarding track without its header
// extensions, which belong to the incoming stream; the outgoing
// interceptors add their own.
func forwardRTP(t *webrtc.TrackLocalStaticRTP, pkt *rtp.Packet) {
	h := pkt.Header
	h.Extension, h.Extensions, h.ExtensionProfile = false, nil, 0
	_ = t.WriteRTP(&rtp.Packet{Header: h, Payload: pkt.Payload})
}

// maxFrameWait is how long an incomplete frame waits for retransmissions
// (NACK) before it is given up and a key frame requested: a few round trips.
const maxFrameWait = 400 * time.Millisecond

// pliInterval spaces the picture loss indications a receiver sends while it
// waits for a key frame.
const pliInterval = 300 * time.Millisecond

// videoReader reads a remote H.264 or VP8 track: it forwards the packets
// (hub; H.264 only, the forwarding tracks' codec), rebuilds access units
// (frames) for onFrame and asks for a key frame (PLI) at the start and after
// every loss, delivering frames from a key frame on.
type videoReader struct {
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackRemote
	user    string
	fwd     *webrtc.TrackLocalStaticRTP
	onFrame func(user string, au []byte, at time.Time)

	waitKey bool
	lastPLI time.Time
	// tails holds the arrival times of the last packets carrying the
	// marker bit (the end of an access unit), by sequence number: the
	// sample builder releases a frame only when a packet of the next one
	// arrives, but the frame was complete when its marker bit came.
	tails [8]tail
}

type tail struct {
	seq uint16
	at  time.Time
}

// completedAt is when the packet with sequence number seq arrived if it
// was one of the last marker-bit packets, else now.
func (r *videoReader) completedAt(seq uint16, now time.Time) time.Time {
	if t := r.tails[seq%uint16(len(r.tails))]; t.seq == seq && !t.at.IsZero() {
		return t.at
	}
	return now
}

func (r *videoReader) run() {
	var sb *samplebuilder.SampleBuilder
	var depacketizer rtp.Depacketizer = &codecs.H264Packet{}
	isKey := IsKeyFrame
	if vp8 := strings.EqualFold(r.track.Codec().MimeType, webrtc.MimeTypeVP8); vp8 {
		depacketizer, isKey = &codecs.VP8Packet{}, camera.IsVP8KeyFrame
		r.fwd = nil
	}
	if r.onFrame != nil {
		sb = samplebuilder.New(512, depacketizer, 90000,
			samplebuilder.WithMaxTimeDelay(maxFrameWait), samplebuilder.WithRTPHeaders(true))
	}
	r.waitKey = true
	var last uint16 // sequence number of the last packet of the last frame
	started := false
	for {
		pkt, _, err := r.track.ReadRTP()
		if err != nil {
			return
		}
		if r.fwd != nil {
			forwardRTP(r.fwd, pkt)
		}
		if sb == nil {
			continue
		}
		if pkt.Marker {
			r.tails[pkt.SequenceNumber%uint16(len(r.tails))] = tail{pkt.SequenceNumber, time.Now()}
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			// A frame that does not follow the previous one means frames
			// were lost for good (NACK did not bring them back).
			if s.PrevDroppedPackets > 0 || (started && len(s.RTPHeaders) > 0 && s.RTPHeaders[0].SequenceNumber != last+1) {
				r.waitKey = true
			}
			at := time.Now()
			if n := len(s.RTPHeaders); n > 0 {
				last, started = s.RTPHeaders[n-1].SequenceNumber, true
				at = r.completedAt(last, at)
			}
			if r.waitKey && !isKey(s.Data) {
				r.askKeyFrame()
				continue
			}
			r.waitKey = false
			r.onFrame(r.user, s.Data, at)
		}
		if r.waitKey {
			r.askKeyFrame()
		}
	}
}

func (r *videoReader) askKeyFrame() {
	if time.Since(r.lastPLI) < pliInterval {
		return
	}
	r.lastPLI = time.Now()
	_ = r.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(r.track.SSRC())}})
}

// IsKeyFrame reports whether an Annex B H.264 access unit holds an IDR
// slice or a sequence parameter set.
func IsKeyFrame(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] != 0 || au[i+1] != 0 {
			continue
		}
		j := i + 2
		if au[j] == 0 {
			j++
		}
		if j+1 >= len(au) || au[j] != 1 {
			continue
		}
		switch au[j+1] & 0x1f {
		case 5, 7:
			return true
		}
		i = j
	}
	return false
}
