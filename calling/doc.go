// Package calling is intercomd's calling core: the state machine of Tencent's
// TRTCCalling component (call, group call, accept, reject, hang up, line busy,
// timeouts, cancel, multi-device rules), the observer events it reports and the
// versioned wire messages it exchanges over signaling.
//
// The package is pure. It imports only the standard library, performs no I/O,
// starts no goroutine and never reads a clock: the caller passes the current
// time and one [Input] to [Machine.Step], which returns the [Effect]s to apply,
// in order (messages to send, events to report, timers to start and stop,
// requests to the media layer). Timers are effects that come back as
// [TimerFired] inputs; IDs come from an injected generator. A Machine is not
// safe for concurrent use: exactly one goroutine owns it (package agent does
// this for the daemon and the softphone).
//
// Media is a port. The core asks for media with [MediaEffect]s (join, connect a
// peer, leave, ring, controls) and learns what media did through inputs
// ([MediaJoined], [PeerJoined], [PeerLeft], [MediaFailed], [MediaOut]).
// "Connected" is decided by media: a party is present once its media joined.
//
// Topology: the party that placed a call is its hub. Every party that accepts
// connects its media to the hub; the hub relays who is in the call to the
// others. When the hub leaves, the call ends for everyone. The hub's media
// is per device of a party (its login session, Message.Session): several
// devices of one user may preview a call, and the one that accepts keeps
// its media while the others' is torn down.
//
// A party whose media drops for good (its app was reloaded, its connection
// died) is kept in the hub's call for Config.RejoinGrace: a device of the
// same user may take its place meanwhile with [Rejoin] (wire message
// rejoin); past the grace it leaves the call as before.
package calling
