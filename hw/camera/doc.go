// Package camera captures video and encodes it once, with one H.264 encoder, for every
// viewer of the intercom.
//
// # Contract
//
// A Pipeline owns one video source at a time — a V4L2 camera through
// pion/mediadevices, or a built-in moving test pattern — and one H.264 encoder
// (constrained baseline, FmtpLine, configured bit rate and key frame interval):
// the board's V4L2 memory-to-memory encoder (package m2m: the Pi's bcm2835-codec,
// /dev/video11) or openh264, as Encoder.Kind says; EncoderAuto probes for the
// hardware encoder at each session and falls back to openh264, logging why.
// Two sources need no encoder and pass their H.264 through: a camera that encodes
// (PixelFormatH264, read with m2m.Capture) and a pipe source (Source.Command), such
// as RpicamCommand for the Pi camera modules. The Pi's cameras are read through
// rpicam-vid rather than libcamera itself: libcamera has a C++ API only, and the
// one Go wrapper published (seedhammer.com/driver/libcamera) is part of one
// application, not a maintained binding. Passed-through streams keep their last
// SPS/PPS and put them before key frames that lack them. MJPEG cameras (most USB
// cameras give 720p only so) are read with m2m.Capture too and decoded by
// libjpeg-turbo straight into the encoder's I420 (package tjpeg, loaded at run
// time): 0.5 ms a 640x480 frame against 3.9 ms with the standard library, which
// mediadevices uses and which remains the fallback without libturbojpeg0. It
// writes the encoded access units into one *webrtc.TrackLocalStaticSample, Track(),
// which the media layer adds to every viewer's PeerConnection; pion fans the packets
// out. Adding a mediadevices track to N PeerConnections instead would build N encoders.
// EncodersRunning is therefore 0 or 1, whatever the number of viewers.
//
// VP8 (vp8.go) is a second encoder, libvpx linked from Debian's libvpx-dev, for the
// viewers that cannot receive H.264: fed the same raw frames on the encode goroutine
// (copied, so H.264 does not wait for it), it writes a track of its own, runs only
// while some viewer holds it and is at most one too. Sources that pass H.264 through
// have no raw frames for it.
//
// Because the track is not a mediadevices track, nobody else reads the viewers' RTCP:
// the media layer must call DrainRTCP (or HandleRTCP) for each RTPSender, which turns
// PLI and FIR into ForceKeyFrame, and ViewerJoined when a viewer connects. Key frame
// requests are rate-limited and coalesced (Encoder.MinKeyFrameGap).
//
// Switch changes the source during a call and SetEnabled switches the camera off and
// on, without renegotiation: the track stays, the source and encoder behind it are
// closed and a new pair opened (never two encoders at once); the first frame after the
// change is a key frame. Off means nothing is sent: no capture, no encoding, no packets;
// viewers keep the last picture.
// Config.StartOff starts the pipeline off, so a device that sends video only
// during calls spends nothing on the camera while idle (the media layer switches it on
// when a video call joins).
//
// A source that fails to open or stops delivering frames is logged, reported in
// Status().Err and reopened every RetryInterval; it never panics the process. A missing
// camera yields an error wrapping ErrNoDevice that names the device; the daemon falls
// back to a TestPatternDevice source with Switch.
//
// Devices lists the machine's cameras and their formats for the `devices` subcommand.
// The mediadevices driver manager is process-wide state filled by the camera driver's
// init; only this package touches it.
//
// The test pattern stamps each frame with its capture time, frame counter and seed in a
// bar code (described in pattern.go); DecodePattern and PatternTimestamp read it back,
// so a receiver can measure latency and frame rate.
//
// # Concurrency
//
// A Pipeline's methods may be called from any goroutine. One control goroutine opens
// and closes sources and encoders in the order commands arrive; one encode goroutine
// per open source reads frames, encodes them and writes samples, and is the only caller
// of the encoder's controls. ForceKeyFrame, ViewerJoined and SetBitRate only set atomic
// requests that the encode goroutine applies between the capture of the next frame and
// its encoding (so a viewer joining gets the very next frame as a key frame); they
// never block.
// Close cancels and joins every goroutine of the pipeline except those HandleRTCP
// starts, which end with their RTPSender.
//
// # Architecture
//
// This is a hardware edge of intercomd: it uses cgo (openh264, linked statically from
// mediadevices) and imports neither the calling core nor the media layer. cmd/intercomd
// builds a Pipeline from its configuration and hands Track, DrainRTCP and ViewerJoined
// to the media layer.
package camera
