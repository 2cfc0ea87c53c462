package broker_test

import (
	"testing"

	"github.com/intercomd/intercomd/internal/leaktest"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// Disconnect matches connections by their token: a client admitted by
// CheckCredentials (the daemon itself) has none and is never closed by it,
// even by a match that accepts everything.
func TestDisconnectLeavesCredentialClients(t *testing.T) {
	leaktest.Check(t)
	env := mqtttest.StartEmbedded(t, mqtttest.Options{
		CheckCredentials: func(user string, password []byte) bool {
			return user == "door" && string(password) == "door-password"
		},
	})
	addr := env.Broker().Addr()
	door := dialRaw(t, addr, 4)
	if ack := door.connect(door.connectPacket("door", "door-password", "door.d", true)); ack.ReasonCode != 0 {
		t.Fatalf("door refused: %#x", ack.ReasonCode)
	}
	alice := dialRaw(t, addr, 4)
	alice.connect(alice.connectPacket("alice", env.Token("alice"), "alice.s1", true))
	var users []string
	n := env.Broker().Disconnect(func(user, token string) bool {
		users = append(users, user)
		return true
	}, "every token revoked")
	if n != 1 || len(users) != 1 || users[0] != "alice" {
		t.Fatalf("Disconnect closed %d connections, asked about %v; want alice's only", n, users)
	}
	waitClosed(t, alice, "alice's connection")
	if codes := door.subscribe(1, env.Layout.Presence("alice")); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("door's connection after Disconnect: subscribe %v", codes)
	}
}
