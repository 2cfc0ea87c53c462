package calling

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata transcripts with the current output")

// TestTranscripts replays the scripts in testdata/*.txt. Each line starting
// with "> " is an input to one machine; the lines after it, up to the next
// input, are the effects it must produce (calling.Describe), in order. A
// "#" line is a comment naming what the case covers. Run with -update to
// rewrite the expected output, then review the diff.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

type script struct {
	t        *testing.T
	now      time.Time
	machines map[string]*Machine
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), machines: map[string]*Machine{}}
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var got []string
	var want []string
	var cmd string
	lineNo := 0
	flush := func() {
		if cmd == "" {
			return
		}
		if !*update && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: > %s\n--- got\n%s\n--- want\n%s", path, lineNo, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, g := range got {
			out.WriteString(g + "\n")
		}
		cmd, got, want = "", nil, nil
	}
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "> "):
			flush()
			cmd, lineNo = line[2:], i+1
			out.WriteString(line + "\n")
			got = s.run(cmd, i+1)
		case cmd != "" && line != "" && !strings.HasPrefix(line, "#"):
			want = append(want, line)
		default:
			flush()
			out.WriteString(line + "\n")
		}
	}
	flush()
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newTestMachine(user string, opts ...func(*Config)) *Machine {
	n := 0
	cfg := Config{
		User:    user,
		Session: "s" + user,
		NewID: func() string {
			n++
			return fmt.Sprintf("%s%d", user, n)
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	return New(cfg)
}

// run executes one input line: "<machine> <verb> args...".
func (s *script) run(cmd string, line int) []string {
	f := strings.Fields(cmd)
	fail := func(format string, args ...any) []string {
		s.t.Fatalf("line %d: %s: %s", line, cmd, fmt.Sprintf(format, args...))
		return nil
	}
	if len(f) < 2 {
		return fail("want <machine> <verb> ...")
	}
	name, verb, args := f[0], f[1], f[2:]
	if name == "clock" && verb == "+" {
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return fail("%v", err)
		}
		s.now = s.now.Add(d)
		return nil
	}
	if verb == "new" {
		var opts []func(*Config)
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "multidevice":
				opts = append(opts, func(c *Config) { c.MultiDevice = true })
			case "door":
				opts = append(opts, func(c *Config) { c.DoorUsers = strings.Split(v, ",") })
			case "session":
				opts = append(opts, func(c *Config) { c.Session = v })
			case "timeout":
				d, _ := time.ParseDuration(v)
				opts = append(opts, func(c *Config) { c.InviteTimeout = d })
			case "callers":
				opts = append(opts, func(c *Config) { c.Callers = strings.Split(v, ",") })
			}
		}
		s.machines[name] = newTestMachine(name, opts...)
		return nil
	}
	m := s.machines[name]
	if m == nil {
		return fail("no machine %q", name)
	}
	var in Input
	switch verb {
	case "login":
		in = Login{}
	case "logout":
		in = Logout{}
	case "call":
		c := Call{Users: strings.Split(args[0], ","), Type: Video}
		for _, a := range args[1:] {
			if a == "audio" {
				c.Type = Audio
			} else if a == "ringgroup" {
				c.RingGroup = true
			} else if g, ok := strings.CutPrefix(a, "group="); ok {
				c.Group = g
			}
		}
		in = c
	case "accept":
		in = Accept{}
	case "preview":
		in = Preview{}
	case "reject":
		in = Reject{}
	case "busy":
		in = LineBusy{}
	case "hangup":
		in = Hangup{}
	case "switch":
		in = SwitchToAudio{}
	case "door":
		in = OpenDoor{}
	case "recv":
		// recv <from> <type> k=v ...
		msg := Message{V: 1, Type: ParseMsgType(args[1])}
		for _, a := range args[2:] {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "call":
				msg.Call = v
			case "invite":
				msg.Invite = v
			case "users":
				msg.Users = strings.Split(v, ",")
			case "group":
				msg.Group = v
			case "media":
				_ = msg.Media.UnmarshalText([]byte(v))
			case "timeout_ms":
				msg.TimeoutMS, _ = strconv.Atoi(v)
			case "reason":
				msg.Reason = ParseReason(strings.ReplaceAll(v, "_", " ")) // not_allowed_to_call
			case "user":
				msg.User = v
			case "status":
				msg.Status = ParseMemberState(v)
			case "session":
				msg.Session = v
			case "to_session":
				msg.ToSession = v
			case "ok":
				b := v == "true"
				msg.OK = &b
			case "sdp":
				msg.SDP = v
			case "duration":
				msg.Duration, _ = strconv.Atoi(v)
			default:
				return fail("unknown field %q", k)
			}
		}
		if err := msg.Validate(); err != nil {
			return fail("invalid message: %v", err)
		}
		in = Received{From: args[0], Msg: msg}
	case "timer":
		// timer <kind> call[/invite[/user]]
		parts := strings.Split(args[1], "/")
		tm := Timer{Call: parts[0]}
		for k := TimerInvite; k <= TimerSwitchAudio; k++ {
			if k.String() == args[0] {
				tm.Kind = k
			}
		}
		if len(parts) > 1 {
			tm.Invite = parts[1]
		}
		if len(parts) > 2 {
			tm.User = parts[2]
		}
		in = TimerFired{Timer: tm}
	case "joined":
		var err error
		if len(args) > 1 {
			err = errors.New(args[1])
		}
		in = MediaJoined{Call: args[0], Err: err}
	case "peer-joined":
		u, sess, _ := strings.Cut(args[1], "/")
		in = PeerJoined{Call: args[0], User: u, Session: sess}
	case "peer-left":
		// peer-left <call> <user>[/<session>] [reason]
		u, sess, _ := strings.Cut(args[1], "/")
		pl := PeerLeft{Call: args[0], User: u, Session: sess}
		if len(args) > 2 {
			pl.Reason = ParseReason(args[2])
		}
		in = pl
	case "media-failed":
		in = MediaFailed{Call: args[0], Err: errors.New("ice failed")}
	case "presence":
		in = Presence{User: args[0], Online: args[1] == "online"}
	case "media-out":
		u, sess, _ := strings.Cut(args[1], "/")
		in = MediaOut{Call: args[0], To: u, Session: sess, Msg: Message{Type: ParseMsgType(args[2]), SDP: "v=0"}}
	default:
		return fail("unknown verb %q", verb)
	}
	var out []string
	for _, e := range m.Step(s.now, in) {
		out = append(out, Describe(e))
	}
	return out
}
