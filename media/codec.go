package media

import (
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Video codecs: the camera has one H.264 encoder for every party that
// takes H.264 and, started only while someone needs it, one VP8 encoder for
// every party that takes VP8 but not H.264 (camera.VP8). Which one a
// connection carries is chosen from the party's description: its answer to
// the hub's offer (which lists H.264 first, then VP8), or its offer when
// this side answers (a party, a viewer). A description with neither gets
// no video; the call goes on with sound.

// videoCodecs reports the codecs of a description's video section: the
// section at index (an answer's sections are in the order of the offer's;
// a refused one may lack its mid), or the first video section when index
// is negative. A refused section (port 0) takes none.
func videoCodecs(d *webrtc.SessionDescription, index int) (h264, vp8 bool) {
	if d == nil {
		return false, false
	}
	// A copy: Unmarshal caches what it parses in the description, which
	// may be pion's own (RemoteDescription), read by its goroutines.
	cp := webrtc.SessionDescription{Type: d.Type, SDP: d.SDP}
	parsed, err := cp.Unmarshal()
	if err != nil {
		return false, false
	}
	for i, md := range parsed.MediaDescriptions {
		if md.MediaName.Media != "video" || (index >= 0 && i != index) {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			return false, false
		}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			v := strings.ToUpper(a.Value)
			h264 = h264 || strings.Contains(v, " H264/")
			vp8 = vp8 || strings.Contains(v, " VP8/")
		}
		return h264, vp8
	}
	return false, false
}

// pickVideo returns the codec the camera sends to a party whose description
// is d (CodecH264, CodecVP8), in the order of Config.VideoCodecs, or "" for
// none.
func (m *Media) pickVideo(d *webrtc.SessionDescription, index int) string {
	if m.opts.Camera == nil {
		return ""
	}
	h264, vp8 := videoCodecs(d, index)
	for _, c := range m.opts.VideoCodecs {
		switch {
		case c == CodecH264 && h264:
			return CodecH264
		case c == CodecVP8 && vp8 && m.opts.Camera.VP8() != nil:
			return CodecVP8
		}
	}
	return ""
}

// cameraTrack is the camera's track for codec.
func (m *Media) cameraTrack(codec string) *webrtc.TrackLocalStaticSample {
	if codec == CodecVP8 {
		return m.opts.Camera.VP8().Track()
	}
	return m.opts.Camera.Track()
}

// serveCamera drains sender's RTCP into the key frame requests of codec's
// encoder, on a goroutine Close joins, and for VP8 holds the VP8 encoder:
// the returned function lets it go.
func (m *Media) serveCamera(s *webrtc.RTPSender, codec string) (release func()) {
	cam := m.opts.Camera
	var done <-chan struct{}
	release = func() {}
	if codec == CodecVP8 {
		release = cam.VP8().Acquire()
		done = cam.VP8().HandleRTCP(s)
	} else {
		done = cam.HandleRTCP(s)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-done
	}()
	return release
}

// cameraJoined asks codec's encoder for a key frame at once: a connection
// that carries it came up.
func (m *Media) cameraJoined(codec string) {
	switch codec {
	case CodecVP8:
		m.opts.Camera.VP8().ViewerJoined()
	case CodecH264:
		m.opts.Camera.ViewerJoined()
	}
}

// senderSection returns the index of the section of pc's local description
// that s sends on, -1 if none.
func senderSection(pc *webrtc.PeerConnection, s *webrtc.RTPSender) int {
	mid := ""
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == s {
			mid = t.Mid()
		}
	}
	d := pc.LocalDescription()
	if mid == "" || d == nil {
		return -1
	}
	var parsed sdp.SessionDescription
	if parsed.UnmarshalString(d.SDP) != nil {
		return -1
	}
	for i, md := range parsed.MediaDescriptions {
		if m, _ := md.Attribute(sdp.AttrKeyMID); m == mid {
			return i
		}
	}
	return -1
}

// keepRefusedCodecs rewrites an answer so that each video section it
// refuses (port 0) lists the codecs the offer gave that section and is
// inactive. pion takes the video codecs of a connection, for good, from
// the first video section of the first answer; a refused one lists none,
// after which every offer pion makes fails (a section with a sender and no
// codec is an error; one without is written refused, which pion then takes
// for a change of direction and regenerates until "excessive retries in
// CreateOffer"). With the offered codecs kept, later offers list the
// section as they should, and the party refuses it again or takes it.
func keepRefusedCodecs(answer string, offer *webrtc.SessionDescription) string {
	if offer == nil {
		return answer
	}
	var a, o sdp.SessionDescription
	if a.Unmarshal([]byte(answer)) != nil || o.Unmarshal([]byte(offer.SDP)) != nil {
		return answer
	}
	changed := false
	for i, md := range a.MediaDescriptions {
		if md.MediaName.Media != "video" || md.MediaName.Port.Value != 0 || i >= len(o.MediaDescriptions) {
			continue
		}
		om := o.MediaDescriptions[i]
		if om.MediaName.Media != "video" {
			continue
		}
		attrs := slices.DeleteFunc(slices.Clone(md.Attributes), func(at sdp.Attribute) bool {
			return at.Key == "rtpmap" || at.Key == "fmtp" || at.Key == "rtcp-fb" || at.Key == sdp.AttrKeyMID ||
				webrtc.NewRTPTransceiverDirection(at.Key) != webrtc.RTPTransceiverDirectionUnknown
		})
		for _, at := range om.Attributes {
			if at.Key == "rtpmap" || at.Key == "fmtp" || at.Key == "rtcp-fb" || at.Key == sdp.AttrKeyMID {
				attrs = append(attrs, at)
			}
		}
		md.Attributes = append(attrs, sdp.NewPropertyAttribute("inactive"))
		md.MediaName.Formats = om.MediaName.Formats
		changed = true
	}
	if !changed {
		return answer
	}
	out, err := a.Marshal()
	if err != nil {
		return answer
	}
	return string(out)
}
