// Package push rings a resident's phone when its app is closed: Web Push
// (RFC 8030) to every browser subscription of the user, encrypted per
// RFC 8291 and signed per RFC 8292 (VAPID) by
// github.com/SherClockHolmes/webpush-go, and ntfy as a second channel
// configured per user.
//
// The parts:
//
//   - Keys is the device's VAPID key pair, kept in the state directory
//     (LoadOrCreateKeys).
//   - Store keeps each user's subscriptions, one per device of the user,
//     bounded per user and in total, persisted atomically across restarts.
//   - Sender delivers payloads to a user's subscriptions off the caller's
//     goroutine: a bounded queue, a fixed number of workers, a timeout per
//     request, a back-off per push service after 413, 429 and 5xx answers
//     (no retries: a ring is only worth something now), subscriptions
//     dropped on 404 and 410, and each failure reason logged once until it
//     clears.
//   - Ntfy publishes the same rings to an ntfy topic per user.
//   - Notifier follows the calling wire messages (invite, accept, reject,
//     cancel, timeout, leave) and turns "this call now rings user U" and
//     "it no longer does" into Ring and End payloads for both channels.
//
// Payloads are JSON (see Payload and docs/protocol.md); the service worker
// of the web app turns them into notifications.
//
// Everything here is safe for concurrent use. Nothing blocks the caller:
// Sender.Send, Ntfy.Publish and Notifier.Observe return at once; Close
// waits for the work under way, bounded by the request timeout.
package push
