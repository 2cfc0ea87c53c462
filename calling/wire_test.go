package calling

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDecodeRefuses(t *testing.T) {
	big := `{"v":1,"type":"offer","call":"c1","sdp":"` + strings.Repeat("x", MaxMessageSize) + `"}`
	for _, tc := range []struct{ name, in, want string }{
		{"not json", `hello`, "not a JSON object"},
		{"no version", `{"type":"invite"}`, `no version field`},
		{"newer version", `{"v":2,"type":"invite"}`, "unsupported version 2"},
		{"unknown type", `{"v":1,"type":"teleport","call":"c"}`, `unknown message type "teleport"`},
		{"oversized", big, "over the 65536-byte limit"},
		{"invite without users", `{"v":1,"type":"invite","call":"c","invite":"i","media":"video"}`, "needs 1 to 8 users"},
		{"invite bad user", `{"v":1,"type":"invite","call":"c","invite":"i","media":"video","users":["a b"]}`, `user "a b" is not a valid ID`},
		{"invite duplicate user", `{"v":1,"type":"invite","call":"c","invite":"i","media":"video","users":["a","a"]}`, "listed twice"},
		{"invite bad media", `{"v":1,"type":"invite","call":"c","invite":"i","media":"smell","users":["a"]}`, "unknown call type"},
		{"invite timeout", `{"v":1,"type":"invite","call":"c","invite":"i","media":"audio","users":["a"],"timeout_ms":1}`, "timeout_ms 1 outside"},
		{"cancel with nothing", `{"v":1,"type":"cancel"}`, "needs a call or an invite ID"},
		{"bad call id", `{"v":1,"type":"leave","call":"../x"}`, "not a valid ID"},
		{"wrong field type", `{"v":1,"type":"leave","call":5}`, "cannot unmarshal"},
		{"trailing data", `{"v":1,"type":"leave","call":"c"} {}`, "after top-level value"},
		{"candidate missing", `{"v":1,"type":"candidate","call":"c"}`, "needs a candidate"},
		{"member without user", `{"v":1,"type":"member","call":"c","status":"left"}`, "needs user and status"},
		{"rejoin without call", `{"v":1,"type":"rejoin","session":"s1"}`, "no call ID"},
		{"rejoin request without session", `{"v":1,"type":"rejoin","call":"c"}`, "needs the session"},
		{"negative duration", `{"v":1,"type":"hangup","call":"c","duration":-1}`, "negative duration"},
		// encoding/json would read the bad byte as U+FFFD and act on the rest.
		{"not UTF-8 in sdp", "{\"v\":1,\"type\":\"offer\",\"call\":\"c\",\"sdp\":\"v=0\xff\"}", "not valid UTF-8"},
		{"not UTF-8 in reason", "{\"v\":1,\"type\":\"leave\",\"call\":\"c\",\"reason\":\"\xc3\"}", "not valid UTF-8"},
		{"not UTF-8 in an unknown field", "{\"v\":1,\"type\":\"leave\",\"call\":\"c\",\"x\":\"\xed\xa0\x80\"}", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode(%.60q) = %v, want ErrBadMessage containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecodeAcceptsSparseAndUnknownFields(t *testing.T) {
	for _, in := range []string{
		`{"v":1,"type":"cancel","invite":"i1"}`,
		`{"v":1,"type":"cancel","call":"c1"}`,
		`{"v":1,"type":"leave","call":"c1","from_the_future":{"x":1}}`,
		`{"v":1,"type":"candidate","call":"c1","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
	} {
		if _, err := Decode([]byte(in)); err != nil {
			t.Errorf("Decode(%s): %v", in, err)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	ok := true
	mid, idx := "0", uint16(0)
	for _, m := range []Message{
		{Type: MsgInvite, Call: "c1", Invite: "i1", Users: []string{"a", "b"}, Group: "g", Media: Video, TimeoutMS: 30000, Session: "s"},
		{Type: MsgReject, Call: "c1", Invite: "i1", Reason: ReasonBusy},
		{Type: MsgDoor, Call: "c1", OK: &ok},
		{Type: MsgCandidate, Call: "c1", Candidate: &Candidate{Candidate: "candidate:1", SDPMid: &mid, SDPMLineIndex: &idx}},
		{Type: MsgOffer, Call: "c1", SDP: "v=0\r\n", Restart: true},
		{Type: MsgRejoin, Call: "c1", Session: "s2"},
		{Type: MsgRejoin, Call: "c1", ToSession: "s2", OK: &ok, Media: Audio},
		{Type: MsgRejoin, Call: "c1", ToSession: "s2", OK: new(bool), Reason: ReasonCallOver},
	} {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%s): %v", m, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if got.String() != m.String() || got.V != ProtocolVersion {
			t.Errorf("round trip: got %s, want %s", got, m)
		}
	}
	if _, err := Encode(Message{Type: MsgOffer, Call: "c1", SDP: strings.Repeat("x", MaxSDPLength+1)}); err == nil {
		t.Error("Encode accepted an oversized SDP")
	}
}

// FuzzDecode: the decoder never panics, and whatever it accepts encodes
// again and decodes to the same message.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"invite","call":"c","invite":"i","media":"video","users":["a"],"timeout_ms":30000}`,
		`{"v":1,"type":"cancel","invite":"i1"}`,
		`{"v":1,"type":"candidate","call":"c1","candidate":{"candidate":"x","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"v":1,"type":"door","call":"c","ok":true}`,
		`{"v":2}`, `[]`, `{"v":1,"type":"member","call":"c","user":"u","status":"left"}`,
		"{\"v\":1,\"type\":\"offer\",\"call\":\"c\",\"sdp\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error not wrapping ErrBadMessage: %v", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted %q, which is not UTF-8", b)
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		m2, err := Decode(again)
		if err != nil || m2.String() != m.String() {
			t.Fatalf("round trip of %q: %v %s != %s", b, err, m2, m)
		}
		// Feeding it to a machine in any state must not panic.
		mc := newTestMachine("a")
		mc.Step(time.Time{}, Login{})
		mc.Step(time.Time{}, Received{From: "b", Msg: m})
		mc.Step(time.Time{}, Call{Users: []string{"b"}, Type: Video})
		mc.Step(time.Time{}, Received{From: "b", Msg: m})
	})
}

// TestPure keeps the calling core free of I/O: its dependencies are the
// standard library only, and it imports no package that does I/O, starts
// processes or reads the clock on its own.
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") && dep != "github.com/intercomd/intercomd/calling" {
			t.Errorf("calling depends on %s; it must use the standard library only", dep)
		}
	}
	out, err = exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{"bytes": true, "encoding/json": true, "errors": true, "fmt": true, "regexp": true, "slices": true, "sort": true, "strings": true, "time": true, "unicode/utf8": true}
	for _, imp := range strings.Fields(string(out)) {
		if !allowed[imp] {
			t.Errorf("calling imports %s; the core does no I/O (allowed: %v)", imp, allowed)
		}
	}
}

// BenchmarkStep measures state machine steps per second over a whole call:
// invite, accept, join, leave.
func BenchmarkStep(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hub := newTestMachine("door")
	callee := newTestMachine("alice")
	hub.Step(now, Login{})
	callee.Step(now, Login{})
	b.ReportAllocs()
	b.ResetTimer()
	steps := 0
	for i := 0; i < b.N; i++ {
		var invite, accept Message
		for _, e := range hub.Step(now, Call{Users: []string{"alice"}, Type: Video}) {
			if s, ok := e.(Send); ok {
				invite = s.Msg
			}
		}
		callee.Step(now, Received{From: "door", Msg: invite})
		callee.Step(now, Accept{})
		for _, e := range callee.Step(now, MediaJoined{Call: invite.Call}) {
			if s, ok := e.(Send); ok && s.To == "door" {
				accept = s.Msg
			}
		}
		hub.Step(now, Received{From: "alice", Msg: accept})
		hub.Step(now, PeerJoined{Call: invite.Call, User: "alice"})
		callee.Step(now, PeerJoined{Call: invite.Call, User: "door"})
		hub.Step(now, Hangup{})
		callee.Step(now, Received{From: "door", Msg: Message{V: 1, Type: MsgLeave, Call: invite.Call}})
		steps += 10
	}
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
}

// TestWireEnums checks every wire enum: each value has a name that parses
// back to it, a name this version does not know decodes to the Unknown zero
// value (and the message is still accepted), and Unknown is never written.
func TestWireEnums(t *testing.T) {
	type enum interface {
		String() string
		MarshalText() ([]byte, error)
	}
	check := func(kind string, n int, value func(int) enum, parse func(string) enum, unknown enum) {
		t.Helper()
		seen := map[string]bool{}
		for i := 1; i < n; i++ {
			v := value(i)
			b, err := v.MarshalText()
			if err != nil || string(b) != v.String() || string(b) == "unknown" || seen[string(b)] {
				t.Errorf("%s %d: MarshalText = %q, %v (String %q)", kind, i, b, err, v)
			}
			seen[string(b)] = true
			if got := parse(string(b)); got != v {
				t.Errorf("%s: parse(%q) = %v, want %v", kind, b, got, v)
			}
		}
		if unknown.String() != "unknown" {
			t.Errorf("%s: zero value is %q, want unknown", kind, unknown)
		}
		if _, err := unknown.MarshalText(); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: the zero value marshals (err %v)", kind, err)
		}
		if _, err := value(n).MarshalText(); err == nil {
			t.Errorf("%s: value %d past the last marshals", kind, n)
		}
		if got := parse("from-the-future"); got != unknown {
			t.Errorf("%s: unknown name parses as %v", kind, got)
		}
	}
	check("message type", int(MsgRejoin)+1, func(i int) enum { return MsgType(i) }, func(s string) enum { return ParseMsgType(s) }, MsgUnknown)
	check("reason", int(ReasonCallOver)+1, func(i int) enum { return Reason(i) }, func(s string) enum { return ParseReason(s) }, ReasonUnknown)
	check("member state", int(MemberNoResp)+1, func(i int) enum { return MemberState(i) }, func(s string) enum { return ParseMemberState(s) }, MemberUnknown)
	check("call type", int(Video)+1, func(i int) enum { return CallType(i) }, func(s string) enum {
		var c CallType
		_ = c.UnmarshalText([]byte(s))
		return c
	}, CallTypeUnknown)

	m, err := Decode([]byte(`{"v":1,"type":"leave","call":"c1","reason":"gone fishing"}`))
	if err != nil || m.Reason != ReasonUnknown {
		t.Errorf("unknown reason: %+v, %v; want ReasonUnknown and no error", m, err)
	}
	b, err := Encode(m)
	if err != nil || strings.Contains(string(b), "reason") {
		t.Errorf("ReasonUnknown written as %s (%v); want the field left out", b, err)
	}
	if _, err := Decode([]byte(`{"v":1,"type":"member","call":"c1","user":"a","status":"teleported"}`)); err == nil {
		t.Error("member message with an unknown status accepted")
	}
	long := `{"v":1,"type":"leave","call":"c1","reason":"` + strings.Repeat("x", MaxTextLength+1) + `"}`
	if _, err := Decode([]byte(long)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("over-long reason: %v, want ErrBadMessage", err)
	}
	m, err = Decode([]byte(`{"v":1,"type":"door","call":"c1","ok":false,"reason":"not allowed to open the door"}`))
	if err != nil || m.Reason != ReasonDoorNotAllowed || m.Type != MsgDoor {
		t.Errorf("door refusal: %+v, %v", m, err)
	}
}

// TestNamedKinds: timer and control kinds, named in the web bridge's JSON,
// parse back from their names; an unknown name is the Unknown zero value.
func TestNamedKinds(t *testing.T) {
	for k := TimerKind(1); k.String() != "unknown"; k++ {
		if ParseTimerKind(k.String()) != k {
			t.Errorf("timer kind %d: %q does not parse back", k, k)
		}
	}
	for k := ControlKind(1); k.String() != "unknown"; k++ {
		if ParseControlKind(k.String()) != k {
			t.Errorf("control kind %d: %q does not parse back", k, k)
		}
	}
	if TimerSwitchAudio.String() != "switch_audio" || ControlRemoteView.String() != "remote_view" {
		t.Error("a kind's last value has no name")
	}
	if ParseTimerKind("nap") != TimerUnknown || ParseControlKind("") != ControlUnknown {
		t.Error("unknown names do not parse as Unknown")
	}
}
