// Package docs holds intercomd's written documentation. Its tests keep the
// examples in protocol.md true: every JSON block must decode as the daemon
// decodes it, every topic must belong to the topic layout, and the worked
// examples must be exactly what the calling state machine sends.
package docs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/mqttsig"
	"github.com/intercomd/intercomd/mqttsig/topic"
	"github.com/intercomd/intercomd/visitorlog"
)

const docFile = "protocol.md"

// block is one ```json code block of protocol.md.
type block struct {
	line     int    // line of the opening fence
	kind     string // "message", "presence", "lenient" or "dropped"
	body     string
	topic    string // topic named in backticks on the line before the block, if any
	scenario string // the worked example it belongs to, if any
}

func (b block) String() string { return fmt.Sprintf("%s:%d", docFile, b.line) }

var (
	topicInLine  = regexp.MustCompile("`(intercomd/v1/[^`]*)`")
	scenarioMark = regexp.MustCompile(`^<!-- scenario: ([a-z0-9-]+) -->$`)
)

// readDoc returns the JSON blocks of protocol.md and its full text.
func readDoc(t *testing.T) ([]block, string) {
	t.Helper()
	data, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatalf("read %s: %v", docFile, err)
	}
	var blocks []block
	var cur *block
	var prev, scenario string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		case strings.HasPrefix(line, "```json"):
			info := strings.Fields(strings.TrimPrefix(line, "```"))
			kind := "message"
			if len(info) > 1 {
				kind = info[1]
			}
			switch kind {
			case "message", "presence", "lenient", "dropped", "visitor":
			default:
				t.Fatalf("%s:%d: unknown json block kind %q", docFile, n, kind)
			}
			cur = &block{line: n, kind: kind, scenario: scenario}
			if m := topicInLine.FindStringSubmatch(prev); m != nil {
				cur.topic = m[1]
			}
		case scenarioMark.MatchString(line):
			scenario = scenarioMark.FindStringSubmatch(line)[1]
		case line == "<!-- end scenario -->":
			scenario = ""
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", docFile, cur.line)
	}
	return blocks, string(data)
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) (bool, error) {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false, err
	}
	return reflect.DeepEqual(va, vb), nil
}

func TestJSONBlocks(t *testing.T) {
	blocks, _ := readDoc(t)
	counts := map[string]int{}
	for _, b := range blocks {
		counts[b.kind]++
		switch b.kind {
		case "message", "lenient":
			m, err := calling.Decode([]byte(b.body))
			if err != nil {
				t.Errorf("%s: message does not decode: %v\n%s", b, err, b.body)
				continue
			}
			if b.kind == "lenient" {
				continue
			}
			// Decoding is case-insensitive and ignores unknown fields, so
			// a misspelt field would pass: the block must also be exactly
			// what intercomd itself would encode.
			enc, err := calling.Encode(m)
			if err != nil {
				t.Errorf("%s: decoded message does not encode: %v", b, err)
				continue
			}
			if same, err := sameJSON([]byte(b.body), enc); err != nil || !same {
				t.Errorf("%s: not in canonical form (misspelt field, zero value written out?)\ndoc:      %s\nintercomd: %s", b, strings.TrimSpace(b.body), enc)
			}
		case "visitor":
			// A visitor log entry as the HTTPS API serves it: every field
			// known, and the same JSON when intercomd encodes it again.
			var e visitorlog.Entry
			dec := json.NewDecoder(strings.NewReader(b.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Errorf("%s: visitor log entry does not decode: %v", b, err)
				continue
			}
			enc, _ := json.Marshal(e)
			if same, err := sameJSON([]byte(b.body), enc); err != nil || !same {
				t.Errorf("%s: visitor log entry not as intercomd writes it:\ndoc:       %s\nintercomd: %s", b, strings.TrimSpace(b.body), enc)
			}
		case "dropped":
			if _, err := calling.Decode([]byte(b.body)); err == nil {
				t.Errorf("%s: marked dropped but decodes:\n%s", b, b.body)
			}
		case "presence":
			p, err := mqttsig.ParsePresence([]byte(b.body))
			if err != nil {
				t.Errorf("%s: presence does not parse: %v\n%s", b, err, b.body)
				continue
			}
			if !calling.ValidID(p.Session) || !slices.Contains(p.Versions, calling.ProtocolVersion) {
				t.Errorf("%s: presence needs a valid session and versions including %d: %+v", b, calling.ProtocolVersion, p)
			}
			enc, _ := json.Marshal(p)
			if same, err := sameJSON([]byte(b.body), enc); err != nil || !same {
				t.Errorf("%s: presence has fields intercomd does not write\ndoc:      %s\nintercomd: %s", b, strings.TrimSpace(b.body), enc)
			}
		}
	}
	if counts["message"] < 20 || counts["presence"] < 2 || counts["dropped"] < 1 {
		t.Errorf("too few examples found: %v", counts)
	}
}

// TestTopics checks every concrete topic the document names and the kind of
// topic each JSON block is shown on.
func TestTopics(t *testing.T) {
	blocks, text := readDoc(t)
	l, err := topic.New("")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, m := range topicInLine.FindAllStringSubmatch(text, -1) {
		name := m[1]
		if strings.ContainsAny(name, "+#{}<>") {
			continue // a filter or a pattern
		}
		seen++
		if _, err := l.Parse(name); err != nil {
			t.Errorf("topic %q: %v", name, err)
		}
	}
	if seen < 10 {
		t.Errorf("only %d concrete topics found", seen)
	}
	for _, b := range blocks {
		if b.topic == "" || strings.ContainsAny(b.topic, "+#{}<>") {
			if b.scenario != "" {
				t.Errorf("%s: a worked example's message needs its topic on the line before", b)
			}
			continue
		}
		n, err := l.Parse(b.topic)
		if err != nil {
			continue // reported above
		}
		if (b.kind == "presence") != (n.Kind == topic.Presence) {
			t.Errorf("%s: %s block shown on %s topic %s", b, b.kind, n.Kind, b.topic)
		}
	}
}

// TestEveryNameDocumented checks that each message type, reason and member
// status has its place in the document.
func TestEveryNameDocumented(t *testing.T) {
	_, text := readDoc(t)
	// Every value after the Unknown zero, up to the first without a name.
	for typ := calling.MsgType(1); typ.String() != "unknown"; typ++ {
		if !strings.Contains(text, "\n### `"+typ.String()+"`") {
			t.Errorf("no section \"### `%s`\"", typ)
		}
	}
	var names []string
	for r := calling.Reason(1); r.String() != "unknown"; r++ {
		names = append(names, r.String())
	}
	for s := calling.MemberState(1); s.String() != "unknown"; s++ {
		names = append(names, s.String())
	}
	for _, s := range names {
		if !strings.Contains(text, "`"+s+"`") {
			t.Errorf("reason or status %q never named", s)
		}
	}
	for name, v := range map[string]int{
		"MaxMessageSize": calling.MaxMessageSize, "MaxIDLength": calling.MaxIDLength,
		"MaxSDPLength": calling.MaxSDPLength, "MaxTextLength": calling.MaxTextLength,
		"MaxTimeoutMS": calling.MaxTimeoutMS, "MinTimeoutMS": calling.MinTimeoutMS,
		"MaxParties": calling.MaxParties, "MaxPayload": mqttsig.MaxPayload,
	} {
		if !strings.Contains(text, fmt.Sprint(v)) {
			t.Errorf("limit %s = %d never stated", name, v)
		}
	}
}

// --- the worked examples, replayed on real state machines ---

// sim runs calling machines against an in-memory broker that follows the
// topic layout and a media layer that connects as soon as it is asked to.
type sim struct {
	t      *testing.T
	now    time.Time
	layout topic.Layout
	groups map[string][]string
	nodes  []*simNode
	queue  []func()
	sent   []sent
	down   map[string]bool // users not connected: what is sent to them is lost
}

type simNode struct {
	user string
	m    *calling.Machine
}

type sent struct {
	topic   string
	payload []byte
	typ     calling.MsgType
}

func newSim(t *testing.T) *sim {
	l, err := topic.New("")
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, now: time.Date(2026, 3, 14, 18, 30, 0, 0, time.UTC), layout: l, groups: map[string][]string{}, down: map[string]bool{}}
}

// add logs in a user with the given session; ids are the IDs its machine
// hands out, in order.
func (s *sim) add(user, session string, ids []string, opts ...func(*calling.Config)) *simNode {
	cfg := calling.Config{User: user, Session: session, NewID: func() string {
		if len(ids) == 0 {
			s.t.Fatalf("%s ran out of IDs", user)
		}
		id := ids[0]
		ids = ids[1:]
		return id
	}}
	for _, o := range opts {
		o(&cfg)
	}
	n := &simNode{user: user, m: calling.New(cfg)}
	s.nodes = append(s.nodes, n)
	s.step(n, calling.Login{})
	s.run()
	s.sent = nil // logins are not part of the examples
	return n
}

func (s *sim) step(n *simNode, in calling.Input) {
	for _, e := range n.m.Step(s.now, in) {
		s.apply(n, e)
	}
}

// do runs a command and everything that follows from it.
func (s *sim) do(n *simNode, in calling.Input) {
	s.step(n, in)
	s.run()
}

func (s *sim) run() {
	for len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		f()
	}
}

func (s *sim) later(n *simNode, in calling.Input) {
	s.queue = append(s.queue, func() { s.step(n, in) })
}

func (s *sim) apply(n *simNode, e calling.Effect) {
	switch e := e.(type) {
	case calling.Emit:
		if err, ok := e.Event.(calling.Error); ok {
			s.t.Fatalf("%s: %v", n.user, err.Err)
		}
	case calling.Send:
		b, err := calling.Encode(e.Msg)
		if err != nil {
			s.t.Fatalf("%s sends a message that does not encode: %v", n.user, err)
		}
		msg, err := calling.Decode(b)
		if err != nil {
			s.t.Fatal(err)
		}
		var name string
		var to []*simNode
		if e.Group != "" {
			name = s.layout.Group(e.Group, n.user)
			for _, o := range s.nodes {
				if o.user != n.user && slices.Contains(s.groups[e.Group], o.user) {
					to = append(to, o)
				}
			}
		} else {
			name = s.layout.Inbox(e.To, n.user)
			for _, o := range s.nodes {
				if o.user == e.To {
					to = append(to, o)
				}
			}
		}
		s.sent = append(s.sent, sent{topic: name, payload: b, typ: msg.Type})
		for _, o := range to {
			if !s.down[o.user] {
				s.later(o, calling.Received{From: n.user, Group: e.Group, Msg: msg})
			}
		}
	case calling.Media:
		s.media(n, e.Do)
	}
}

const simSDP = "v=0\r\n"

func (s *sim) media(n *simNode, e calling.MediaEffect) {
	switch e := e.(type) {
	case calling.JoinMedia:
		s.later(n, calling.MediaJoined{Call: e.Call})
	case calling.ConnectPeer:
		s.later(n, calling.MediaOut{Call: e.Call, To: e.User, Session: e.Session, Msg: calling.Message{Type: calling.MsgOffer, SDP: simSDP}})
	case calling.Signal:
		switch e.Msg.Type {
		case calling.MsgOffer:
			s.later(n, calling.MediaOut{Call: e.Call, To: e.From, Session: e.Session, Msg: calling.Message{Type: calling.MsgAnswer, SDP: simSDP}})
			s.later(n, calling.PeerJoined{Call: e.Call, User: e.From, Session: e.Session})
		case calling.MsgAnswer:
			s.later(n, calling.PeerJoined{Call: e.Call, User: e.From, Session: e.Session})
		}
	}
}

func isMedia(t calling.MsgType) bool {
	return t == calling.MsgOffer || t == calling.MsgAnswer || t == calling.MsgCandidate
}

// scenarios replay each worked example of protocol.md. The media messages
// (offer, answer, candidate) come from the media layer, not the state
// machine, and are left out of the comparison.
var scenarios = map[string]func(s *sim){
	"one-to-one": func(s *sim) {
		alice := s.add("alice", "w7k2q9", []string{"c4n8r1xe", "i6t3b5mz"})
		bob := s.add("bob", "p3j8d5", nil)
		s.do(alice, calling.Call{Users: []string{"bob"}, Type: calling.Video})
		s.do(bob, calling.Accept{})
		s.now = s.now.Add(42 * time.Second)
		s.do(bob, calling.Hangup{})
	},
	"doorbell": func(s *sim) {
		s.groups["residents"] = []string{"door", "alice", "bob", "carol"}
		door := s.add("door", "f1d6s0", []string{"c9m4x2ka", "i3v8q1zt"})
		alice := s.add("alice", "w7k2q9", nil)
		s.add("bob", "p3j8d5", nil)
		s.add("carol", "g5u0h4", nil)
		s.do(door, calling.Call{Users: []string{"alice", "bob", "carol"}, Type: calling.Video, Group: "residents"})
		s.do(alice, calling.Accept{})
		s.now = s.now.Add(25 * time.Second)
		s.do(door, calling.Hangup{})
	},
	"busy": func(s *sim) {
		alice := s.add("alice", "w7k2q9", []string{"c4n8r1xe", "i6t3b5mz"})
		s.add("bob", "p3j8d5", nil)
		carol := s.add("carol", "g5u0h4", []string{"c2y7e3wl", "i8a1o6vn"})
		s.do(alice, calling.Call{Users: []string{"bob"}, Type: calling.Audio})
		s.do(carol, calling.Call{Users: []string{"bob"}, Type: calling.Audio})
	},
	"door": func(s *sim) {
		door := s.add("door", "f1d6s0", []string{"c7h2k9pw", "i5r0n3gj"}, func(c *calling.Config) {
			c.DoorUsers = []string{"alice"}
		})
		alice := s.add("alice", "w7k2q9", nil)
		s.do(door, calling.Call{Users: []string{"alice"}, Type: calling.Video})
		s.do(alice, calling.Accept{})
		s.do(alice, calling.OpenDoor{})
	},
	"door-callers": func(s *sim) {
		door := s.add("door", "f1d6s0", nil, func(c *calling.Config) { c.Callers = []string{"alice", "bob"} })
		fiveMinutes := func(c *calling.Config) { c.InviteTimeout = 5 * time.Minute }
		mallory := s.add("mallory", "k4t9x2", []string{"c3m8v5qd", "i2w9k4hx"}, fiveMinutes)
		alice := s.add("alice", "w7k2q9", []string{"c6p1z7rb", "i8f3n0ty"}, fiveMinutes)
		s.do(mallory, calling.Call{Users: []string{"door"}, Type: calling.Video})
		if door.m.State() != calling.Idle || mallory.m.State() != calling.Idle {
			s.t.Fatalf("mallory's call: door %s, mallory %s", door.m.State(), mallory.m.State())
		}
		s.do(alice, calling.Call{Users: []string{"door"}, Type: calling.Video})
		s.now = s.now.Add(calling.DefaultInviteTimeout)
		s.do(door, calling.TimerFired{Timer: calling.Timer{Kind: calling.TimerRing, Call: "c6p1z7rb", Invite: "i8f3n0ty"}})
		if alice.m.State() != calling.Idle {
			s.t.Fatalf("alice still %s after the door's verdict", alice.m.State())
		}
	},
	"re-ring": func(s *sim) {
		door := s.add("door", "f1d6s0", []string{"c5k2w8na", "i7d4r9js"})
		alice := s.add("alice", "w7k2q9", nil)
		s.down["alice"] = true
		s.do(door, calling.Call{Users: []string{"alice"}, Type: calling.Video, RingGroup: true})
		s.now = s.now.Add(8 * time.Second)
		s.down["alice"] = false
		s.do(door, calling.Presence{User: "alice", Online: true})
		s.do(alice, calling.Accept{})
		if door.m.State() != calling.InCall || alice.m.State() != calling.InCall {
			s.t.Fatalf("door %s, alice %s", door.m.State(), alice.m.State())
		}
	},
}

func TestWorkedExamples(t *testing.T) {
	blocks, _ := readDoc(t)
	inDoc := map[string][]block{}
	for _, b := range blocks {
		if b.scenario == "" || b.kind == "presence" {
			continue
		}
		if _, ok := scenarios[b.scenario]; !ok {
			t.Fatalf("%s: unknown scenario %q", b, b.scenario)
		}
		var head struct {
			Type calling.MsgType `json:"type"`
		}
		if err := json.Unmarshal([]byte(b.body), &head); err == nil && isMedia(head.Type) {
			continue
		}
		inDoc[b.scenario] = append(inDoc[b.scenario], b)
	}
	for name, play := range scenarios {
		t.Run(name, func(t *testing.T) {
			s := newSim(t)
			play(s)
			var got []sent
			for _, m := range s.sent {
				if !isMedia(m.typ) {
					got = append(got, m)
				}
			}
			want := inDoc[name]
			if len(want) == 0 {
				t.Fatalf("no example %q in %s", name, docFile)
			}
			for i := range max(len(got), len(want)) {
				switch {
				case i >= len(want):
					t.Errorf("the machines also send, after the documented messages: %s %s", got[i].topic, got[i].payload)
				case i >= len(got):
					t.Errorf("%s: documented but never sent: %s %s", want[i], want[i].topic, strings.TrimSpace(want[i].body))
				default:
					same, err := sameJSON([]byte(want[i].body), got[i].payload)
					if err != nil || !same || want[i].topic != got[i].topic {
						t.Errorf("%s: message %d differs\ndoc:       %s %s\nmachines:  %s %s",
							want[i], i+1, want[i].topic, strings.TrimSpace(want[i].body), got[i].topic, got[i].payload)
					}
				}
			}
		})
	}
}
