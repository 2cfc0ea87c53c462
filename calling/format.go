package calling

import (
	"fmt"
	"strings"
)

// String renders a message compactly for logs and transcripts: its type and
// its non-empty fields, SDP shortened.
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.Type.String())
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	add("call", m.Call)
	add("invite", m.Invite)
	add("to_session", m.ToSession)
	if len(m.Users) > 0 {
		add("users", strings.Join(m.Users, ","))
	}
	add("group", m.Group)
	if m.Media != CallTypeUnknown {
		add("media", m.Media.String())
	}
	if m.TimeoutMS != 0 {
		add("timeout_ms", fmt.Sprint(m.TimeoutMS))
	}
	add("reason", reasonText(m.Reason))
	if m.Type == MsgHangup {
		add("duration", fmt.Sprint(m.Duration))
	}
	add("user", m.User)
	if m.Status != MemberUnknown {
		add("status", m.Status.String())
	}
	if m.OK != nil {
		add("ok", fmt.Sprint(*m.OK))
	}
	if m.SDP != "" {
		add("sdp", fmt.Sprintf("(%d bytes)", len(m.SDP)))
	}
	if m.Restart {
		add("restart", "true")
	}
	if m.Candidate != nil {
		add("candidate", "(1)")
	}
	return b.String()
}

func (t Timer) String() string {
	s := t.Kind.String() + " " + t.Call
	if t.Invite != "" {
		s += "/" + t.Invite
	}
	if t.User != "" {
		s += "/" + t.User
	}
	return s
}

// Describe renders an effect as one line, for logs and transcript tests.
func Describe(e Effect) string {
	switch e := e.(type) {
	case Send:
		if e.Group != "" {
			return fmt.Sprintf("send group:%s %s", e.Group, e.Msg)
		}
		return fmt.Sprintf("send %s %s", e.To, e.Msg)
	case Emit:
		return "emit " + DescribeEvent(e.Event)
	case StartTimer:
		return fmt.Sprintf("timer start %s %s", e.Timer, e.After)
	case StopTimer:
		return fmt.Sprintf("timer stop %s", e.Timer)
	case Disconnect:
		return "disconnect"
	case DoorOpen:
		return "door open by " + e.By
	case Media:
		switch d := e.Do.(type) {
		case JoinMedia:
			return fmt.Sprintf("media join %s %s hub=%s", d.Call, d.Type, d.Hub)
		case ConnectPeer:
			if d.Preview {
				return fmt.Sprintf("media connect %s %s preview", d.Call, device(d.User, d.Session))
			}
			return fmt.Sprintf("media connect %s %s", d.Call, device(d.User, d.Session))
		case DisconnectPeer:
			return fmt.Sprintf("media disconnect %s %s", d.Call, device(d.User, d.Session))
		case LeaveMedia:
			return fmt.Sprintf("media leave %s", d.Call)
		case Signal:
			return fmt.Sprintf("media signal %s from %s %s", d.Call, device(d.From, d.Session), d.Msg.Type)
		case Ring:
			return "media ring " + d.Tone.String()
		case SetVideo:
			return fmt.Sprintf("media video %s %v", d.Call, d.On)
		case MediaControl:
			return fmt.Sprintf("media control %s on=%v front=%v user=%s", d.Kind, d.On, d.Front, d.User)
		}
	}
	return fmt.Sprintf("%T %+v", e, e)
}

// DescribeEvent renders an event as one line.
func DescribeEvent(ev Event) string {
	switch ev := ev.(type) {
	case Error:
		return "Error " + ev.Err.Error()
	case Invited:
		return fmt.Sprintf("Invited sponsor=%s users=%s group=%s type=%s", ev.Sponsor, strings.Join(ev.Users, ","), ev.Group, ev.Type)
	case InviteeListUpdate:
		return "InviteeListUpdate " + strings.Join(ev.Users, ",")
	case UserEnter:
		return "UserEnter " + ev.User
	case UserLeave:
		return "UserLeave " + ev.User
	case Rejected:
		return "Reject " + ev.User
	case LineBusyEvent:
		return "LineBusy " + ev.User
	case NoResp:
		return "NoResp " + ev.User
	case CallingCancel:
		return fmt.Sprintf("CallingCancel sponsor=%s reason=%s", ev.Sponsor, reasonText(ev.Reason))
	case CallingTimeout:
		return "CallingTimeout"
	case CallEnd:
		return fmt.Sprintf("CallEnd reason=%s duration=%s", ev.Reason, ev.Duration)
	case StateChanged:
		return fmt.Sprintf("State %s -> %s", ev.From, ev.To)
	case KickedOffline:
		return "KickedOffline"
	case SwitchToAudioResult:
		return fmt.Sprintf("SwitchToAudio ok=%v msg=%s", ev.OK, ev.Message)
	case DoorResult:
		return fmt.Sprintf("Door by=%s ok=%v reason=%s", ev.By, ev.OK, reasonText(ev.Reason))
	case CallRefused:
		return fmt.Sprintf("CallRefused from=%s call=%s reason=%s", ev.From, ev.Call, reasonText(ev.Reason))
	case UserVideoAvailable:
		return fmt.Sprintf("VideoAvailable %s %v", ev.User, ev.Available)
	case UserAudioAvailable:
		return fmt.Sprintf("AudioAvailable %s %v", ev.User, ev.Available)
	case UserVoiceVolume:
		return fmt.Sprintf("VoiceVolume %s %d", ev.User, ev.Volume)
	}
	return fmt.Sprintf("%T %+v", ev, ev)
}

// device names a user's device: "user/session", or "user" when the
// session is unknown.
func device(user, session string) string {
	if session == "" {
		return user
	}
	return user + "/" + session
}

// reasonText is r's wire name, "" for ReasonUnknown (no reason given).
func reasonText(r Reason) string {
	if r == ReasonUnknown {
		return ""
	}
	return r.String()
}
