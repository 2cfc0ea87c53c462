package broker_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/usersig"
)

// The fuzz targets check the broker against rules written out here again,
// independently of package topic: a regression in either shows.
const fuzzID = `[A-Za-z0-9_-]{1,64}`

var (
	// What user alice (member of group family) may subscribe to, with the
	// default prefix.
	aliceMaySubscribe = regexp.MustCompile(`^intercomd/v1/(inbox/alice/(` + fuzzID + `|\+|#)|presence/(` + fuzzID + `|\+)|group/family/(` + fuzzID + `|\+))$`)
)

// mayPublish is the publish rule for any user of the fuzz broker's groups.
func mayPublish(user, name string) bool {
	if !usersig.ValidID(user) {
		return false
	}
	u := regexp.QuoteMeta(user)
	rule := `^intercomd/v1/(inbox/` + fuzzID + `/` + u + `|presence/` + u
	if user == "alice" || user == "bob" {
		rule += `|group/family/` + u
	}
	return regexp.MustCompile(rule + `)$`).MatchString(name)
}

// startFuzzBroker starts a broker for a fuzz target: no log, no limit of
// connections per user (every iteration connects anew).
func startFuzzBroker(f *testing.F) (addr string, secret []byte) {
	secret, err := usersig.NewSecret()
	if err != nil {
		f.Fatal(err)
	}
	b, err := broker.New(broker.Options{
		Addr: "127.0.0.1:0", Secret: secret,
		Groups:          map[string][]string{"family": {"alice", "bob"}},
		MaxConnsPerUser: 1 << 30,
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	return b.Addr(), secret
}

// FuzzConnect sends CONNECT packets and checks who is admitted: exactly a
// valid token of the username, a client ID that is empty, the user or
// "<user>.<id>", and a will the user may publish (retained only on its
// presence). A password "tok:<user>" stands for a valid token of <user>.
func FuzzConnect(f *testing.F) {
	addr, secret := startFuzzBroker(f)
	f.Add("alice", "tok:alice", "alice.s1", byte(4), "", false)
	f.Add("alice", "tok:alice", "", byte(5), "intercomd/v1/presence/alice", true)
	f.Add("alice", "tok:alice", "alice", byte(4), "intercomd/v1/inbox/bob/alice", false)
	f.Add("alice", "tok:alice-bob", "alice-bob.s1", byte(4), "", false)
	f.Add("alice-bob", "tok:alice-bob", "alice-bob.s1", byte(5), "", false)
	f.Add("alice", "tok:alice", "alice-bob.s1", byte(5), "", false)
	f.Add("alice", "tok:alice", "alice.", byte(4), "", false)
	f.Add("alice", "", "alice.s1", byte(4), "", false)
	f.Add("alice", "v1.alice.99999999999.AAAA", "alice.s1", byte(5), "", false)
	f.Add("", "tok:alice", "", byte(4), "", false)
	f.Add("alice", "tok:alice", "alice.s1", byte(4), "intercomd/v1/presence/bob", true)
	f.Add("alice", "tok:alice", "alice.s1", byte(4), "intercomd/v1/inbox/bob/alice", true)
	f.Fuzz(func(t *testing.T, user, password, clientID string, version byte, willTopic string, willRetain bool) {
		if version != 4 {
			version = 5
		}
		if who, ok := strings.CutPrefix(password, "tok:"); ok && usersig.ValidID(who) {
			tok, err := usersig.Sign(secret, who, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			password = tok
		}
		claims, err := usersig.Verify(secret, password, time.Now())
		session, sessionOK := strings.CutPrefix(clientID, user+".")
		willOK := willTopic == "" || mayPublish(user, willTopic) && (!willRetain || willTopic == "intercomd/v1/presence/"+user)
		admit := usersig.ValidID(user) && err == nil && claims.User == user &&
			(clientID == "" || clientID == user || (sessionOK && usersig.ValidID(session))) && willOK
		wellFormed := utf8.ValidString(user) && utf8.ValidString(clientID) && utf8.ValidString(willTopic) &&
			!strings.ContainsRune(user+clientID+willTopic, 0) && len(user) < 1<<15 && len(password) < 1<<15 &&
			len(clientID) < 1<<15 && len(willTopic) < 1<<15

		r := dialRaw(t, addr, version)
		pk := r.connectPacket(user, password, clientID, true)
		if willTopic != "" {
			pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, willTopic, []byte("x")
			pk.Connect.WillQos, pk.Connect.WillRetain = 1, willRetain
		}
		if err := r.trySend(pk); err != nil {
			if admit && wellFormed {
				t.Fatalf("send: %v", err)
			}
			return
		}
		ack, err := r.read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("CONNECT neither answered nor closed: user %q, client id %q, password %d bytes, will %q", user, clientID, len(password), willTopic)
		}
		if err != nil || ack.FixedHeader.Type != packets.Connack {
			if admit && wellFormed {
				t.Fatalf("admissible CONNECT answered %v, %v", ack.FixedHeader.Type, err)
			}
			return
		}
		switch {
		case ack.ReasonCode == 0 && !admit:
			t.Fatalf("admitted: user %q, client id %q, will %q (retain %v), token for %q (%v)", user, clientID, willTopic, willRetain, claims.User, err)
		case ack.ReasonCode != 0 && admit && wellFormed:
			t.Fatalf("refused with %#x: user %q, client id %q, will %q", ack.ReasonCode, user, clientID, willTopic)
		case ack.ReasonCode != 0 && version == 4 && ack.ReasonCode > 5:
			t.Fatalf("MQTT 3.1.1 refusal with code %#x", ack.ReasonCode)
		case ack.ReasonCode != 0 && version == 5 && ack.ReasonCode < 0x80:
			t.Fatalf("MQTT 5 refusal with code %#x", ack.ReasonCode)
		}
		if ack.ReasonCode == 0 {
			_ = r.trySend(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
		}
	})
}

// FuzzACL subscribes alice to a filter and has her publish to a topic:
// the broker grants only the filters and accepts only the publishes of
// alice's access rule, and delivers to her only topics she may read.
func FuzzACL(f *testing.F) {
	addr, secret := startFuzzBroker(f)
	tok, err := usersig.Sign(secret, "alice", time.Now().Add(24*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"intercomd/v1/inbox/alice/+", "intercomd/v1/inbox/alice/alice"},
		{"intercomd/v1/inbox/alice/#", "intercomd/v1/inbox/bob/alice"},
		{"intercomd/v1/inbox/bob/+", "intercomd/v1/inbox/alice/bob"},
		{"intercomd/v1/presence/+", "intercomd/v1/presence/alice"},
		{"intercomd/v1/presence/#", "intercomd/v1/presence/bob"},
		{"intercomd/v1/group/family/+", "intercomd/v1/group/family/alice"},
		{"intercomd/v1/group/other/+", "intercomd/v1/group/other/alice"},
		{"#", "intercomd/v1/inbox/alice/alice/x"},
		{"intercomd/#", "$SYS/x"},
		{"+/v1/inbox/alice/+", "intercomd/v1/inbox/+/alice"},
		{"$share/g/intercomd/v1/inbox/alice/+", "intercomd/v1/inbox/alice-bob/alice"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if !utf8.ValidString(filter) || !utf8.ValidString(name) || strings.ContainsRune(filter+name, 0) || filter == "" || len(filter)+len(name) > 1<<15 {
			return // malformed for MQTT itself: the packet decoder refuses it
		}
		r := dialRaw(t, addr, 4)
		if ack := r.connect(r.connectPacket("alice", tok, "alice.fuzz", true)); ack.ReasonCode != 0 {
			t.Fatalf("alice refused: %#x", ack.ReasonCode)
		}
		codes := r.subscribe(1, filter)
		if granted := len(codes) == 1 && codes[0] < 0x80; granted != aliceMaySubscribe.MatchString(filter) {
			t.Fatalf("subscribe %q: SUBACK %v", filter, codes)
		}
		if name == "" || strings.ContainsAny(name, "+#") {
			return
		}
		if err := r.trySend(publishPacket(2, name, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		// The broker handles a client's packets in order: a PINGRESP
		// before the PUBACK means the publish was dropped.
		if err := r.trySend(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
			return // already closed: a denied publish
		}
		for {
			pk, err := r.read()
			if err != nil {
				if mayPublish("alice", name) {
					t.Fatalf("publish to %q: connection closed (%v)", name, err)
				}
				return // a denied publish ends an MQTT 3.1.1 connection
			}
			switch pk.FixedHeader.Type {
			case packets.Publish:
				if !aliceMaySubscribe.MatchString(pk.TopicName) {
					t.Fatalf("alice received a message on %q", pk.TopicName)
				}
				r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
			case packets.Pingresp:
				if mayPublish("alice", name) {
					t.Fatalf("publish to %q dropped", name)
				}
				return
			case packets.Puback:
				if pk.PacketID != 2 {
					continue
				}
				if !mayPublish("alice", name) {
					t.Fatalf("publish to %q accepted", name)
				}
				_ = r.trySend(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
				return
			}
		}
	})
}
