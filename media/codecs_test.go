package media

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// A browser without H.264 (Firefox before its OpenH264 plugin is there)
// gets sound only: takesH264 tells its descriptions apart.
func TestTakesH264(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 109\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:109 opus/48000/2\r\n"
	for _, tc := range []struct {
		name, video string
		want        bool
	}{
		{"H.264 offered", "m=video 9 UDP/TLS/RTP/SAVPF 120 126\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:126 H264/90000\r\n", true},
		{"VP8, VP9 and AV1 only", "m=video 9 UDP/TLS/RTP/SAVPF 120 121 99\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:120 VP8/90000\r\na=rtpmap:121 VP9/90000\r\na=rtpmap:99 AV1/90000\r\n", false},
		{"video refused", "m=video 0 UDP/TLS/RTP/SAVPF 126\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:126 H264/90000\r\n", false},
		{"no video", "", false},
	} {
		d := &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: head + tc.video}
		if got := takesH264(d); got != tc.want {
			t.Errorf("%s: takesH264 = %v, want %v", tc.name, got, tc.want)
		}
	}
	if takesH264(nil) || takesH264(&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "garbage"}) {
		t.Error("no description, or one that does not parse, takes H.264")
	}
}
