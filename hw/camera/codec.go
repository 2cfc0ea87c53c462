package camera

import "github.com/pion/webrtc/v4"

// FmtpLine is the H.264 format the track carries: packetization mode 1, constrained
// baseline profile, level 3.1 — what iOS Safari and Android Chrome decode in hardware.
const FmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// CodecCapability returns the codec of the track, with the RTCP feedback a viewer needs
// to ask for key frames (PLI, FIR) and retransmissions (NACK).
func CodecCapability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: FmtpLine,
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: webrtc.TypeRTCPFBGoogREMB},
			{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
			{Type: webrtc.TypeRTCPFBNACK},
			{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
		},
	}
}

// CodecParameters returns CodecCapability with a payload type, ready for
// (*webrtc.MediaEngine).RegisterCodec(params, webrtc.RTPCodecTypeVideo). Register codecs
// before interceptors, or the SDP loses its nack/pli feedback.
func CodecParameters(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: CodecCapability(), PayloadType: pt}
}
