// Package audio is intercomd's audio engine: it owns the sound device, turns
// the microphone into one stream of Opus frames, and plays the mix of every
// remote party plus call progress tones through the speaker.
//
// # Place in the architecture
//
// The engine knows nothing of calls or peer connections. The media layer
// feeds it each remote party's Opus packets (AddParty, Party.Push) and sends
// the frames it encodes (OnEncoded) to however many peer connections there
// are: one encoder serves them all. The calling layer rings (Ring,
// StopRing), mutes (SetMuted), sets the volume (SetVolume) and reads voice
// levels (OnLevels, Party.Level, MicLevel). cmd/intercomd builds it from
// Config.
//
// # Device
//
// One miniaudio (malgo) duplex device, 48 kHz mono signed 16-bit, so the
// microphone and the speaker run on one clock. Devices are chosen by name
// (Config.Playback, Config.Capture), never by falling back to a default
// device. Backends: ALSA, PulseAudio, or miniaudio's null device, which
// produces silence and consumes audio in real time (tests, machines without a
// sound card). Opening fails with an error matching ErrNoDevice that names
// what is missing; Config.NullFallback makes New fall back to the null
// backend and log a warning instead, and Info().Fallback says so.
//
// # Data path and concurrency
//
// The device callback (a miniaudio thread) is C and never enters Go: it
// copies the captured samples into a lock-free single-producer
// single-consumer queue, fills the speaker buffer from a second queue (both
// queues are pinned Go memory), and once a whole frame is captured signals
// an eventfd that the processing goroutine reads through Go's netpoller. It
// never blocks and never allocates. A Go callback would have taken a Go
// thread and the scheduler's processor on every device period, waking other
// Go threads each time; this way the process is woken once a frame.
//
// The processing goroutine, started by Start and joined by Close, handles
// one 20 ms frame per captured frame: the microphone frame (or Config.Source)
// is muted if asked, metered, Opus-encoded and handed to OnEncoded; then
// each party's jitter buffer yields its next packet, which is decoded (lost
// packets are concealed by libopus PLC, or rebuilt from in-band FEC when the
// next packet is already there), the parties and the tone are summed, the
// volume applied, a limiter keeps the sum from clipping, and the frame is
// queued for the speaker (and copied to Config.Sink). Producing exactly one
// played frame per captured frame keeps the speaker queue at its initial
// margin (one device period plus 40 ms), healing itself after any underrun.
// When processing falls more than 100 ms behind, the oldest captured audio
// is skipped so latency stays bounded. Callbacks given to
// OnEncoded and OnLevels run on this goroutine and must not block.
//
// Every exported method is safe for concurrent use. Party.Push copies the
// payload, so the media layer may reuse its read buffer.
//
// An idle engine pauses its device: after a second with no OnEncoded or
// OnCapture consumer, no party, no tone and no clip, the processing
// goroutine stops the device and waits, costing no CPU; OnEncoded,
// OnCapture, AddParty, Ring and Play start it again at
// once, with a freshly primed speaker queue. Nothing is captured, metered or
// reported by OnLevels while paused (MicLevel reads 0); Stats tells.
//
// If the device stops on its own (unplugged) or delivers nothing for
// Config.StallTimeout (3 s),
// the goroutine ends, Done is closed and Err returns ErrDeviceLost or
// ErrDeviceStalled; nothing panics. Close is still required.
//
// Play mixes a clip of PCM into the speaker once (a recorded greeting);
// OnCapture hands each microphone frame, as encoded, to a second consumer
// (a recorder), beside OnEncoded.
//
// # Opus
//
// Encoding and decoding use libopus through the small cgo binding in
// hw/audio/opus, linked against the static libopus that pion/mediadevices
// ships for amd64, arm64 and armv7 (no libopus-dev, so cross builds stay
// simple). Neither mediadevices' encoder (pull-based, panics on a negative
// libopus return) nor pion/opus (a pure-Go decoder without loss concealment)
// covers both directions with PLC. The jitter buffer is hw/audio/jitter.
//
// # Echo cancellation
//
// With Config.EchoCancel, process runs each captured frame through
// hw/audio/aec (SpeexDSP's echo canceller, then its residual echo
// suppression) before muting and encoding. Capture and playback share the
// device clock, so the reference is simply a frame the engine played
// earlier: as many whole frames back as the speaker queue holds ahead of
// it, plus Config.EchoDelay, and the adaptive filter finds the rest of the
// path (the device's buffering, the room) within Config.EchoTail. A pause
// resets the filter. It costs about 0.2 ms of CPU a frame on a desktop
// core with the default 200 ms tail (go test -bench . ./hw/audio/aec).
// TestEchoCancelled measures it through the engine and Opus: the echo of
// a voice comes back 70 ms late at half level and leaves at least 20 dB
// weaker, while a near-end voice talking over it passes within 6 dB.
//
// # Tests
//
// Config.Source replaces the microphone (audiotest.Tone) and Config.Sink
// records the speaker (audiotest.Recorder), Config.CaptureSink the
// microphone; audiotest.DominantFrequency and
// friends check what was heard. A test tagged "kernel" plays and records
// through the snd-aloop loopback card in a QEMU guest.
package audio
