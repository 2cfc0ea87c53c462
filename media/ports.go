package media

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/camera"
)

// Audio is the audio engine the media layer drives: one Opus encoder for the
// microphone, shared by every party, and one receive path per remote party
// mixed to the speaker. The methods must not block for long; the media loop
// calls them.
type Audio interface {
	// SetMicOutput starts encoding the microphone and hands every Opus
	// packet, with its duration, to out; nil stops. out is called on the
	// engine's goroutine; it does not block and does not retain packet.
	SetMicOutput(out func(packet []byte, d time.Duration))
	// AddParty returns the receive path of one remote party.
	AddParty(user string) (AudioParty, error)
	// Ring plays a call progress tone (ToneNone stops it).
	Ring(calling.Tone)
	// SetMicMute mutes or unmutes the microphone (silence is sent).
	SetMicMute(muted bool)
	// SetHandsFree switches between the loud speaker and the handset
	// volume.
	SetHandsFree(on bool)
	// MicLevel is the microphone's level, 0..100, over the last 300 ms.
	MicLevel() int
}

// AudioParty is one remote party's receive path; *audio.Party of package
// hw/audio has this shape. Push is called from an RTP reader goroutine.
type AudioParty interface {
	Push(seq uint16, ts uint32, payload []byte)
	Level() int
	Close()
}

// Camera is the shared video pipeline (*camera.Pipeline): one encoder, one
// track for every viewer.
type Camera interface {
	Track() *webrtc.TrackLocalStaticSample
	// HandleRTCP drains a sender's RTCP, forcing key frames on PLI and FIR;
	// the channel closes when the sender has stopped.
	HandleRTCP(sender camera.RTCPReader) <-chan struct{}
	ViewerJoined()
	SetEnabled(ctx context.Context, on bool) error
	Switch(ctx context.Context, name string) error
	EncodersRunning() int
	// VP8 is the lazily started second encoder for parties that cannot
	// take H.264.
	VP8() *camera.VP8
}

var _ Camera = (*camera.Pipeline)(nil)
