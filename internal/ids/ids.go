// Package ids makes the random IDs of intercomd: calls, invitations and
// login sessions. It is the one generator the daemon, the softphone and the
// phone's WebAssembly core share; it uses the standard library only, so the
// pure packages that need it (web/bridge) stay pure.
package ids

import "crypto/rand"

// Len is the length of an ID.
const Len = 16

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// New returns a random ID of Len lower-case letters and digits, valid as a
// calling and usersig ID (and as part of an MQTT client ID). It is safe for
// concurrent use.
func New() string {
	var b [Len]byte
	// crypto/rand.Read never fails (Go 1.24 and later).
	_, _ = rand.Read(b[:])
	for i := range b {
		// 256 is not a multiple of 36: the first four letters are a little
		// likelier, which costs a fraction of a bit out of about 82.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
