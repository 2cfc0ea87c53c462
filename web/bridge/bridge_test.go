package bridge_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/web/bridge"
)

// side is one machine behind a Bridge, stepped with JSON as the page does.
type side struct {
	t    *testing.T
	user string
	b    *bridge.Bridge
	now  int64
}

func newSide(t *testing.T, user string) *side {
	b, err := bridge.New(bridge.Config{User: user, Session: "s" + user, InviteTimeoutMS: 20000})
	if err != nil {
		t.Fatal(err)
	}
	s := &side{t: t, user: user, b: b, now: 1_800_000_000_000}
	s.step(`{"type":"login"}`)
	return s
}

func (s *side) step(input string) bridge.Result {
	s.t.Helper()
	s.now += 10
	var r bridge.Result
	if err := json.Unmarshal(s.b.Step(s.now, []byte(input)), &r); err != nil {
		s.t.Fatalf("%s: result is not JSON: %v", s.user, err)
	}
	return r
}

func (s *side) stepJSON(v any) bridge.Result {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.step(string(b))
}

// find returns the effects of r of one type (and media verb, or event name).
func find(r bridge.Result, typ, sub string) []bridge.Effect {
	var out []bridge.Effect
	for _, e := range r.Effects {
		if e.Type != typ {
			continue
		}
		switch {
		case sub == "":
		case e.Media != nil && e.Media.Do == sub:
		case e.Event != nil && e.Event.Name == sub:
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

func one(t *testing.T, r bridge.Result, typ, sub string) bridge.Effect {
	t.Helper()
	es := find(r, typ, sub)
	if len(es) != 1 {
		t.Fatalf("want one %s %s effect, got %d in %+v", typ, sub, len(es), r.Effects)
	}
	return es[0]
}

// deliver hands every send of r addressed to to as a received message, as
// the page does with an MQTT message, and returns the results.
func deliver(t *testing.T, r bridge.Result, from, to *side) []bridge.Result {
	t.Helper()
	var out []bridge.Result
	for _, e := range find(r, "send", "") {
		if e.To != to.user {
			continue
		}
		if _, err := calling.Decode([]byte(e.Payload)); err != nil {
			t.Fatalf("sent payload does not decode: %v: %s", err, e.Payload)
		}
		out = append(out, to.stepJSON(bridge.Input{Type: "received", From: from.user, Payload: e.Payload}))
	}
	return out
}

func TestCallAcrossTwoBridges(t *testing.T) {
	alice, bob := newSide(t, "alice"), newSide(t, "bob")

	r := alice.step(`{"type":"call","users":["bob"],"media":"video"}`)
	if r.State != "dialing" || r.Hub != "alice" || r.Call == "" {
		t.Fatalf("after call: %+v", r)
	}
	join := one(t, r, "media", "join")
	if !join.Media.IsHub || join.Media.Media != "video" {
		t.Errorf("join = %+v", join.Media)
	}
	timer := one(t, r, "start_timer", "")
	if timer.AfterMS != 20000 || timer.Timer.Kind != "invite" || timer.Key == "" {
		t.Errorf("invite timer = %+v", timer)
	}
	call := r.Call

	rs := deliver(t, r, alice, bob)
	if len(rs) != 1 {
		t.Fatalf("bob got %d messages", len(rs))
	}
	inv := one(t, rs[0], "emit", "invited")
	if inv.Event.Sponsor != "alice" || inv.Event.Media != "video" || inv.Event.Call != call || rs[0].State != "ringing" {
		t.Errorf("invited = %+v, state %s", inv.Event, rs[0].State)
	}
	if one(t, rs[0], "media", "ring").Media.Tone != "ringtone" {
		t.Errorf("bob does not ring")
	}

	r = bob.step(`{"type":"accept"}`)
	one(t, r, "media", "join")
	r = bob.stepJSON(bridge.Input{Type: "media_joined", Call: call})
	if n := len(find(r, "send", "")); n != 2 { // to alice, and to bob's other devices
		t.Fatalf("bob's accept went out %d times", n)
	}
	rs = deliver(t, r, bob, alice)
	connect := one(t, rs[0], "media", "connect_peer")
	if connect.Media.User != "bob" || connect.Media.Session != "sbob" {
		t.Errorf("connect_peer %+v, want bob's device sbob", connect.Media)
	}
	one(t, rs[0], "stop_timer", "")

	// The media layer's offer goes through the machine to bob's media,
	// for his device only.
	r = alice.stepJSON(bridge.Input{Type: "media_out", Call: call, To: "bob", Session: "sbob", Msg: &calling.Message{Type: calling.MsgOffer, SDP: "v=0\r\n"}})
	if p := one(t, r, "send", "").Payload; !strings.Contains(p, `"to_session":"sbob"`) {
		t.Errorf("the offer does not name bob's device: %s", p)
	}
	rs = deliver(t, r, alice, bob)
	sig := one(t, rs[0], "media", "signal")
	if sig.Media.From != "alice" || sig.Media.Session != "salice" || sig.Media.Msg.Type != calling.MsgOffer || sig.Media.Msg.SDP != "v=0\r\n" {
		t.Errorf("signal = %+v", sig.Media)
	}
	mid := "0"
	r = bob.stepJSON(bridge.Input{Type: "media_out", Call: call, To: "alice", Session: "salice", Msg: &calling.Message{Type: calling.MsgCandidate,
		Candidate: &calling.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid}}})
	rs = deliver(t, r, bob, alice)
	if c := one(t, rs[0], "media", "signal").Media.Msg.Candidate; c == nil || *c.SDPMid != "0" {
		t.Errorf("candidate lost on the way: %+v", c)
	}

	r = bob.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "alice", Session: "salice"})
	if r.State != "in_call" {
		t.Errorf("bob state %s", r.State)
	}
	// Media of another device of bob's (a preview) changes nothing.
	if r = alice.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "bob", Session: "other"}); r.State != "dialing" {
		t.Errorf("alice after another device's media joined: %s", r.State)
	}
	r = alice.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "bob", Session: "sbob"})
	if r.State != "in_call" || one(t, r, "emit", "user_enter").Event.User != "bob" {
		t.Errorf("alice: %+v", r)
	}
	if r = alice.stepJSON(bridge.Input{Type: "peer_left", Call: call, User: "bob", Session: "other"}); r.State != "in_call" || len(r.Effects) != 0 {
		t.Errorf("alice after another device's media left: %+v", r)
	}

	r = bob.step(`{"type":"hangup"}`)
	if r.State != "idle" {
		t.Errorf("bob after hangup: %s", r.State)
	}
	rs = deliver(t, r, bob, alice)
	end := one(t, rs[len(rs)-1], "emit", "call_end")
	if end.Event.Reason != calling.ReasonHangup || rs[len(rs)-1].State != "idle" {
		t.Errorf("alice's end: %+v", end.Event)
	}
}

// TestPreviewAcrossTwoBridges: a ringing phone asks for the caller's media
// (early media); the hub's offer reaches its media before it answers, and
// the answer turns the preview into the call on the same connection.
func TestPreviewAcrossTwoBridges(t *testing.T) {
	alice, bob := newSide(t, "alice"), newSide(t, "bob")
	r := alice.step(`{"type":"call","users":["bob"],"media":"video"}`)
	call := r.Call
	deliver(t, r, alice, bob)

	r = bob.step(`{"type":"preview"}`)
	if r.State != "ringing" || len(find(r, "media", "")) != 0 {
		t.Fatalf("bob after preview: %+v", r)
	}
	rs := deliver(t, r, bob, alice)
	if len(rs) != 1 {
		t.Fatalf("the preview reached alice %d times", len(rs))
	}
	if c := one(t, rs[0], "media", "connect_peer"); c.Media.User != "bob" || c.Media.Session != "sbob" || !c.Media.Preview {
		t.Errorf("connect_peer for a preview = %+v", c.Media)
	}
	if !strings.Contains(string(mustJSON(t, rs[0])), `"preview":true,"session":"sbob"`) {
		t.Errorf("the page does not see preview and session in %s", mustJSON(t, rs[0]))
	}
	r = alice.stepJSON(bridge.Input{Type: "media_out", Call: call, To: "bob", Session: "sbob", Msg: &calling.Message{Type: calling.MsgOffer, SDP: "v=0\r\n"}})
	rs = deliver(t, r, alice, bob)
	if sig := one(t, rs[0], "media", "signal"); sig.Media.Msg.Type != calling.MsgOffer || rs[0].State != "ringing" {
		t.Errorf("bob's media does not get the offer while ringing: %+v", rs[0])
	}
	// Connected media makes nobody present while bob still rings.
	if r = alice.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "bob", Session: "sbob"}); r.State != "dialing" || len(r.Effects) != 0 {
		t.Errorf("alice after a previewing peer joined: %+v", r)
	}
	if r = bob.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "alice", Session: "salice"}); r.State != "ringing" || len(r.Effects) != 0 {
		t.Errorf("bob after preview media joined: %+v", r)
	}

	r = bob.step(`{"type":"accept"}`)
	one(t, r, "media", "join")
	r = bob.stepJSON(bridge.Input{Type: "media_joined", Call: call})
	rs = deliver(t, r, bob, alice)
	if c := one(t, rs[0], "media", "connect_peer"); c.Media.User != "bob" || c.Media.Session != "sbob" || c.Media.Preview {
		t.Errorf("connect_peer after accept = %+v", c.Media)
	}
	r = alice.stepJSON(bridge.Input{Type: "peer_joined", Call: call, User: "bob", Session: "sbob"})
	if r.State != "in_call" || one(t, r, "emit", "user_enter").Event.User != "bob" {
		t.Errorf("alice after accept: %+v", r)
	}

	// Preview is for a ringing invitation only.
	if e := one(t, alice.step(`{"type":"preview"}`), "emit", "error"); !strings.Contains(e.Event.Error, "no call") {
		t.Errorf("preview in a call: %+v", e.Event)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTimersComeBack(t *testing.T) {
	alice := newSide(t, "alice")
	r := alice.step(`{"type":"call","users":["bob"],"media":"audio"}`)
	timer := one(t, r, "start_timer", "")
	b, _ := json.Marshal(bridge.Input{Type: "timer", Timer: timer.Timer})
	r = alice.step(string(b))
	if one(t, r, "emit", "no_resp").Event.User != "bob" || r.State != "idle" {
		t.Errorf("after the invite timer: %+v", r)
	}
	sent := one(t, r, "send", "")
	if sent.To != "bob" || !strings.Contains(sent.Payload, `"type":"timeout"`) {
		t.Errorf("timeout message: %+v", sent)
	}
	// The same timer again belongs to a call that is over: nothing happens.
	if r = alice.step(string(b)); len(r.Effects) != 0 {
		t.Errorf("stale timer had effects: %+v", r.Effects)
	}
}

func TestPresenceAndCommandErrors(t *testing.T) {
	alice := newSide(t, "alice")
	alice.step(`{"type":"presence","user":"bob","online":false}`)
	r := alice.step(`{"type":"call","users":["bob"],"media":"video"}`)
	one(t, r, "emit", "no_resp")
	if one(t, r, "emit", "call_end").Event.Reason != calling.ReasonOffline || len(find(r, "send", "")) != 0 {
		t.Errorf("calling an offline user: %+v", r.Effects)
	}
	r = alice.step(`{"type":"accept"}`)
	if e := one(t, r, "emit", "error"); !strings.Contains(e.Event.Error, "no call") {
		t.Errorf("accept while idle: %+v", e.Event)
	}
}

func TestBadInputsAreDropped(t *testing.T) {
	alice := newSide(t, "alice")
	for _, in := range []string{
		`not json`,
		`{"type":"teleport"}`,
		`{"type":"call","users":["bob"],"media":"smell"}`,
		`{"type":"received","from":"bob","payload":"{\"type\":\"cancel\",\"call\":\"c1\"}"}`,         // no version
		`{"type":"received","from":"bob","payload":"{\"v\":2,\"type\":\"cancel\",\"call\":\"c1\"}"}`, // newer version
		`{"type":"received","from":"b/ob","payload":"{\"v\":1,\"type\":\"cancel\",\"call\":\"c1\"}"}`,
		`{"type":"timer","timer":{"kind":"snooze"}}`,
		`{"type":"media_out","call":"c","to":"bob","msg":{"type":"invite"}}`,
		`{"type":"media_out","call":"c","to":"bob","session":"s/1","msg":{"type":"offer","sdp":"v=0"}}`,
		`{"type":"peer_left","call":"c","user":"bob","session":"` + strings.Repeat("s", 65) + `"}`,
		`{"type":"control","control":"volume"}`,
	} {
		r := alice.step(in)
		if !r.Dropped || r.Error == "" || len(r.Effects) != 0 || r.State != "idle" {
			t.Errorf("%s: %+v", in, r)
		}
	}
}

func TestNewRefusesBadIDs(t *testing.T) {
	if _, err := bridge.New(bridge.Config{User: "al ice", Session: "s1"}); err == nil {
		t.Error("bad user accepted")
	}
	if _, err := bridge.New(bridge.Config{User: "alice"}); err == nil {
		t.Error("empty session accepted")
	}
}

// TestDependencies keeps the WebAssembly core small and pure: the bridge
// sees only the standard library, package calling and internal/ids.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "github.com/intercomd/intercomd/calling", "github.com/intercomd/intercomd/internal/ids", "github.com/intercomd/intercomd/web/bridge":
		default:
			t.Errorf("web/bridge depends on %s", p)
		}
	}
}

// A reloaded page asks to be taken back into its call: the machine joins
// the local media, then sends the hub a rejoin for this session; the hub's
// refusal ends the call with its reason.
func TestRejoinAcrossTheBridge(t *testing.T) {
	bob := newSide(t, "bob")
	r := bob.step(`{"type":"rejoin","call":"c1","hub":"door","media":"video"}`)
	join := one(t, r, "media", "join")
	if r.State != "ringing" || r.Call != "c1" || r.Hub != "door" || join.Media.Media != "video" || join.Media.Hub != "door" {
		t.Fatalf("after rejoin: %+v", r)
	}
	r = bob.step(`{"type":"media_joined","call":"c1"}`)
	sent := one(t, r, "send", "")
	m, err := calling.Decode([]byte(sent.Payload))
	if err != nil || sent.To != "door" || m.Type != calling.MsgRejoin || m.Call != "c1" || m.Session != "sbob" || m.OK != nil {
		t.Fatalf("rejoin request: %+v %v", sent, err)
	}
	r = bob.step(`{"type":"received","from":"door","payload":"{\"v\":1,\"type\":\"rejoin\",\"call\":\"c1\",\"to_session\":\"sbob\",\"ok\":false,\"reason\":\"call over\"}"}`)
	if e := one(t, r, "emit", "call_end"); e.Event.Reason != calling.ReasonCallOver || r.State != "idle" {
		t.Fatalf("after the refusal: %+v", r)
	}
	for _, in := range []string{`{"type":"rejoin","call":"c1","hub":"door","media":"smell"}`} {
		if r := bob.step(in); !r.Dropped {
			t.Errorf("%s: %+v", in, r)
		}
	}
	if r := bob.step(`{"type":"rejoin"}`); !strings.Contains(one(t, r, "emit", "error").Event.Error, "no call to rejoin") {
		t.Errorf("rejoin with no call: %+v", r)
	}
}
