package media

import (
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// A browser without H.264 (Firefox before its OpenH264 plugin is there)
// gets VP8; one with neither gets sound only: videoCodecs tells their
// descriptions apart.
func TestVideoCodecs(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:109 opus/48000/2\r\n"
	for _, tc := range []struct {
		name, video string
		h264, vp8   bool
	}{
		{"H.264 and VP8 offered", "m=video 9 UDP/TLS/RTP/SAVPF 120 126\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:126 H264/90000\r\n", true, true},
		{"VP8, VP9 and AV1 only", "m=video 9 UDP/TLS/RTP/SAVPF 120 121 99\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:121 VP9/90000\r\na=rtpmap:99 AV1/90000\r\n", false, true},
		{"VP9 only", "m=video 9 UDP/TLS/RTP/SAVPF 121\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:121 VP9/90000\r\n", false, false},
		{"video refused", "m=video 0 UDP/TLS/RTP/SAVPF 126\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:126 H264/90000\r\n", false, false},
		{"no video", "", false, false},
	} {
		d := &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: head + tc.video}
		if h, v := videoCodecs(d, -1); h != tc.h264 || v != tc.vp8 {
			t.Errorf("%s: videoCodecs = %v, %v; want %v, %v", tc.name, h, v, tc.h264, tc.vp8)
		}
	}
	if h, v := videoCodecs(nil, -1); h || v {
		t.Error("no description takes video")
	}
	if h, v := videoCodecs(&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "garbage"}, -1); h || v {
		t.Error("a description that does not parse takes video")
	}
}

// An answer's refused video section is applied with the codecs the offer
// gave it, inactive; the others are left alone.
func TestKeepRefusedCodecs(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n"
	offer := &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: head +
		"m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\na=rtpmap:96 VP8/90000\r\n"}
	refused := head + "m=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n"
	got := keepRefusedCodecs(refused, offer)
	for _, want := range []string{"m=video 0 UDP/TLS/RTP/SAVPF 102 96\r\n", "a=mid:1\r\n", "a=rtpmap:102 H264/90000\r\n", "a=rtcp-fb:102 nack pli\r\n", "a=rtpmap:96 VP8/90000\r\n", "a=inactive\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten answer lacks %q:\n%s", want, got)
		}
	}
	if h, v := videoCodecs(&webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: got}, -1); h || v {
		t.Error("the rewritten section still counts as refused: no video is sent on it")
	}
	accepted := head + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n"
	if keepRefusedCodecs(accepted, offer) != accepted {
		t.Error("an answer that refuses nothing was rewritten")
	}
	if keepRefusedCodecs("garbage", offer) != "garbage" || keepRefusedCodecs(refused, nil) != refused {
		t.Error("an answer that does not parse, or one without an offer, was rewritten")
	}
}
