// Package media is intercomd's WebRTC media layer: it carries out the calling
// core's media requests (calling.MediaEffect) with pion/webrtc and reports
// back through the agent's Post (MediaJoined, PeerJoined, PeerLeft,
// MediaFailed, MediaOut, MediaStatus). It implements agent.Media for the
// daemon and for softphones alike.
//
// # Contract
//
// The party that placed a call is its hub and always makes the offers: on
// ConnectPeer it creates a PeerConnection for the party, adds the shared
// camera track (video calls) and the shared microphone track, and sends an
// offer; the party answers. Candidates trickle both ways through signaling
// and are buffered until the remote description they belong to is set.
// PeerJoined is posted the first time a PeerConnection connects.
//
// Early media: a ConnectPeer with Preview (the party asked to see and hear
// the hub while its phone rings) makes the same PeerConnection with the
// camera and microphone tracks and offers, but the party is neither
// forwarded nor sent the others' media, and no PeerJoined is posted. The
// ConnectPeer without Preview that follows its answer keeps that
// connection and renegotiates it with a new offer; PeerJoined is posted
// once that offer is answered (the connection being up). On the party's
// side a hub's offer for a call not joined (the calling core passes one
// only after a Preview) starts a preview: a PeerConnection answered
// receive-only, whose audio plays and whose video goes to OnVideoFrame,
// with no camera or microphone switched on. JoinMedia for that call keeps
// the connection; the hub's next offer is answered with the local tracks,
// attached to the transceivers the first offer made, and PeerJoined
// follows. A preview that fails ends only the preview. DisconnectPeer and
// LeaveMedia close a preview like any connection.
//
// A hub's connections are per device: each is keyed by the party's user
// and login session (ConnectPeer.Session), so several devices of one user
// can preview a call at once, each on a connection of its own.
// DisconnectPeer closes that one device's connection; the device that
// answers keeps its own, and closing the others' previews neither touches
// its media nor is reported (no PeerLeft). Media messages going out name
// the device they are for (MediaOut.Session).
//
// When a connection goes disconnected or failed the hub sends an ICE restart
// offer (Restart in the message) and the party answers it. A connection
// that is not connected ICERestartTimeout after it was created or went down
// ends: the hub posts PeerLeft with calling.ReasonMedia, a party posts
// MediaFailed; either way the call ends with a reason on both sides.
//
// Local media is encoded once per codec whatever the number of parties: the
// camera Pipeline's one H.264 track and one Opus track fed by the audio
// engine's one encoder are added to every PeerConnection, and every
// sender's RTCP is drained (PLI and FIR force a rate-limited key frame; one
// is forced when a viewer connects). A party or viewer that takes VP8 and
// not H.264 (a Firefox without its OpenH264 plugin) gets the camera's VP8
// track instead (camera.VP8: a second encoder, started while any holds it,
// shared by all of them); the codec is chosen from its description (the
// answer to the hub's offer, which lists H.264 then VP8, or its own offer)
// and its RTCP drives that encoder's key frames. One that takes neither
// gets sound only; the hub then keeps the refused video section's codecs
// when it applies the answer (keepRefusedCodecs), or pion could make no
// further offer on the connection. A VP8 party receives no forwarded
// video in a group call (forwarding does not transcode; parties send
// H.264) but hears every party; video a party sends in VP8 reaches
// OnVP8Frame and is not forwarded. Every receiver's RTCP is drained too: pion's interceptors
// see only what is read, and the receiver reports need the party's sender
// reports for the round-trip time (PeerStats.RTT) to be measured.
//
// Group calls: every party connects to the hub only. The hub mixes every
// party into its speaker and forwards each party's Opus RTP (and H.264 RTP,
// when a party sends video) to every other party without transcoding: for
// each party X the hub keeps one TrackLocalStaticRTP per kind, whose stream
// ID is "fwd-X", added send-only to the PeerConnection of every other party;
// a party joining or leaving makes the hub renegotiate with a new offer.
// The receiving side names the audio and video by that stream ID, so each
// party hears and sees every other one individually (voice levels,
// availability). A picture loss indication for a forwarded video is passed
// on to its source. This costs the hub one upload per party and kind and no
// CPU for codecs, which fits a small board; a full mesh would not reach
// browsers behind the hub, and mixing would add a decode and an encode per
// party.
//
// Viewers (NewViewer) watch the device outside calls, for package
// media/whep: a PeerConnection built like a call's with the same camera and
// microphone tracks, send-only, answering the viewer's offer. A viewer is
// no party: it posts nothing to the calling agent and no call sees it. The
// camera runs while some call sends video or some viewer takes it, the
// microphone while some call or viewer takes it; the last to leave
// switches them off.
//
// Availability (UserAudioAvailable, UserVideoAvailable) is posted when a
// remote track starts and ends; UserVoiceVolume every LevelInterval of
// encoded microphone audio (while the microphone runs, that is in every call)
// for each party (and for this side's microphone when Options.User is set). Call
// quality (RTT, loss, jitter, bit rates) is read from pion's stats every
// StatsInterval, logged at debug and returned by Stats.
//
// # Concurrency
//
// Do never blocks: it queues the request. One goroutine (the loop) owns every
// map and PeerConnection and applies requests and pion's news in order.
// pion's callbacks only queue a function for the loop; they fire on fresh
// goroutines, out of order, so the loop reads the connection's current state
// rather than trusting the callback's. RTP readers (one per remote track)
// and RTCP readers (one per sender) copy data into the audio engine, the
// forwarding tracks and OnVideoFrame. Close closes every PeerConnection and
// joins every goroutine; it is idempotent.
//
// # Architecture
//
// media imports calling (the port it serves), hw/camera (codec parameters,
// RTCP helper) and the Opus binding and jitter buffer of hw/audio (for
// SoftAudio); it never touches devices itself. cmd/intercomd hands it the
// camera Pipeline and the audio engine behind the narrow Camera and Audio
// interfaces.
package media
