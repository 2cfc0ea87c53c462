// Package bridge carries the calling core across the JavaScript boundary:
// the phone web app runs calling.Machine compiled to WebAssembly, and this
// package defines the JSON the page and the machine exchange. An Input is
// one JSON object naming a command, a signaling message, a timer or news from
// the browser's media layer; Step answers with the machine's state and its
// effects, in order, as JSON objects the page applies (publish on MQTT, start
// or stop a timer, show an event, drive an RTCPeerConnection, open the door).
//
// Signaling payloads cross as raw strings: Step decodes a received message
// with calling.Decode and encodes every message it sends with
// calling.Encode, so the browser validates and writes exactly what the
// daemon does.
//
// The package is pure like calling (standard library, calling and
// internal/ids only, no
// I/O, no clock, no goroutine); package web/wasm binds it to syscall/js. A
// Bridge is not safe for concurrent use; the page has one thread anyway.
package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/ids"
)

// Config configures the machine of a Bridge.
type Config struct {
	User            string   `json:"user"`
	Session         string   `json:"session"`
	InviteTimeoutMS int      `json:"invite_timeout_ms,omitempty"`
	MultiDevice     bool     `json:"multi_device,omitempty"`
	DoorUsers       []string `json:"door_users,omitempty"`
}

// Bridge owns one calling.Machine.
type Bridge struct {
	m *calling.Machine
}

// New returns a Bridge around a logged-out machine.
func New(cfg Config) (*Bridge, error) {
	if !calling.ValidID(cfg.User) {
		return nil, fmt.Errorf("bridge: user %q is not a valid ID", cfg.User)
	}
	if !calling.ValidID(cfg.Session) {
		return nil, fmt.Errorf("bridge: session %q is not a valid ID", cfg.Session)
	}
	return &Bridge{m: calling.New(calling.Config{
		User:          cfg.User,
		Session:       cfg.Session,
		InviteTimeout: time.Duration(cfg.InviteTimeoutMS) * time.Millisecond,
		MultiDevice:   cfg.MultiDevice,
		DoorUsers:     cfg.DoorUsers,
		NewID:         ids.New,
	})}, nil
}

// Input is the JSON form of a calling.Input. Type selects the input; the
// other fields are read as that type needs them:
//
//	login, logout, accept, preview, reject, busy, hangup, switch_audio, open_door
//	call          users, media ("audio" or "video"), group, ring_group
//	rejoin        call, hub, media: take this device back into a call of
//	              this user after a reload; none of them: back into the
//	              current call, whose media died
//	control       control ("camera", "mic_mute", "hands_free"), on
//	received      from, group, payload (the raw MQTT payload)
//	presence      user, online
//	link          up
//	timer         timer (as given by a start_timer effect)
//	media_joined  call, error ("" for success)
//	peer_joined   call, user, session
//	peer_left     call, user, session, reason
//	media_failed  call, error
//	media_out     call, to, session, msg (a wire message: type, sdp, candidate...)
//
// The session of peer_joined, peer_left and media_out names the party's
// device the connection is with, as given by the connect_peer or signal
// effect that made it: media is per device.
type Input struct {
	Type      string           `json:"type"`
	Users     []string         `json:"users,omitempty"`
	Media     string           `json:"media,omitempty"`
	Group     string           `json:"group,omitempty"`
	Hub       string           `json:"hub,omitempty"`
	RingGroup bool             `json:"ring_group,omitempty"`
	Control   string           `json:"control,omitempty"`
	On        bool             `json:"on,omitempty"`
	From      string           `json:"from,omitempty"`
	Payload   string           `json:"payload,omitempty"`
	User      string           `json:"user,omitempty"`
	Online    bool             `json:"online,omitempty"`
	Up        bool             `json:"up,omitempty"`
	Timer     *Timer           `json:"timer,omitempty"`
	Call      string           `json:"call,omitempty"`
	Error     string           `json:"error,omitempty"`
	Reason    calling.Reason   `json:"reason,omitempty"`
	To        string           `json:"to,omitempty"`
	Session   string           `json:"session,omitempty"`
	Msg       *calling.Message `json:"msg,omitempty"`
}

// Timer is the JSON form of a calling.Timer.
type Timer struct {
	Kind   string `json:"kind"`
	Call   string `json:"call,omitempty"`
	Invite string `json:"invite,omitempty"`
	User   string `json:"user,omitempty"`
}

// Result is what Step returns: the state after the step and the effects.
type Result struct {
	State    string   `json:"state"`
	Call     string   `json:"call,omitempty"`
	Hub      string   `json:"hub,omitempty"`
	LoggedIn bool     `json:"logged_in"`
	Effects  []Effect `json:"effects"`
	// Dropped is set, with Error, when the input itself was refused (a
	// malformed message, an unknown input type); the machine did not run.
	Dropped bool   `json:"dropped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Effect is the JSON form of a calling.Effect. Type is one of send, emit,
// start_timer, stop_timer, disconnect, media, door_open.
type Effect struct {
	Type    string `json:"type"`
	To      string `json:"to,omitempty"`
	Group   string `json:"group,omitempty"`
	Payload string `json:"payload,omitempty"` // send: the encoded message
	Event   *Event `json:"event,omitempty"`
	Timer   *Timer `json:"timer,omitempty"`
	// Key names a timer for stop_timer (and start_timer, to replace one).
	Key     string       `json:"key,omitempty"`
	AfterMS int64        `json:"after_ms,omitempty"`
	Media   *MediaEffect `json:"media,omitempty"`
	By      string       `json:"by,omitempty"`
}

// MediaEffect is the JSON form of a calling.MediaEffect. Do is one of join,
// connect_peer, disconnect_peer, leave, signal, ring, set_video, control.
// Preview marks a connect_peer for a party that previews the call while its
// phone rings (early media): the party is not present until a later
// connect_peer without Preview for the same device, which renegotiates on
// the same connection. Session names the party's device (login session) of
// connect_peer and disconnect_peer, and the sender's device of signal:
// media is per device (several devices of one user may preview at once).
type MediaEffect struct {
	Do      string           `json:"do"`
	Call    string           `json:"call,omitempty"`
	Media   string           `json:"media,omitempty"`
	Hub     string           `json:"hub,omitempty"`
	IsHub   bool             `json:"is_hub,omitempty"`
	User    string           `json:"user,omitempty"`
	From    string           `json:"from,omitempty"`
	Msg     *calling.Message `json:"msg,omitempty"`
	Tone    string           `json:"tone,omitempty"`
	On      bool             `json:"on,omitempty"`
	Control string           `json:"control,omitempty"`
	Preview bool             `json:"preview,omitempty"`
	Session string           `json:"session,omitempty"`
}

// Event is the JSON form of a calling.Event. Name is the event in snake
// case (invited, rejected, line_busy, no_resp, calling_cancel,
// calling_timeout, call_end, user_enter, user_leave, state_changed,
// door_result, switch_to_audio_result, kicked_offline, error...).
type Event struct {
	Name       string         `json:"name"`
	User       string         `json:"user,omitempty"`
	Users      []string       `json:"users,omitempty"`
	Sponsor    string         `json:"sponsor,omitempty"`
	Group      string         `json:"group,omitempty"`
	FromGroup  bool           `json:"from_group,omitempty"`
	Media      string         `json:"media,omitempty"`
	Call       string         `json:"call,omitempty"`
	Reason     calling.Reason `json:"reason,omitempty"`
	DurationMS int64          `json:"duration_ms,omitempty"`
	OK         bool           `json:"ok,omitempty"`
	Message    string         `json:"message,omitempty"`
	Available  bool           `json:"available,omitempty"`
	Volume     int            `json:"volume,omitempty"`
	From       string         `json:"from,omitempty"`
	To         string         `json:"to,omitempty"`
	By         string         `json:"by,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// Step decodes one input, steps the machine at nowMS (milliseconds since
// 1970, the page's clock) and returns the encoded Result. An input that
// cannot be decoded is reported in the Result (Dropped, Error), not as an
// error: the page logs it and goes on, as the daemon does with a malformed
// message.
func (b *Bridge) Step(nowMS int64, input []byte) []byte {
	var r Result
	in, err := decodeInput(input)
	if err != nil {
		r.Dropped, r.Error = true, err.Error()
	} else {
		for _, e := range b.m.Step(time.UnixMilli(nowMS), in) {
			if je, ok := encodeEffect(e); ok {
				r.Effects = append(r.Effects, je)
			}
		}
	}
	r.State = b.m.State().String()
	r.Call = b.m.CallID()
	r.Hub = b.m.Hub()
	r.LoggedIn = b.m.LoggedIn()
	if r.Effects == nil {
		r.Effects = []Effect{}
	}
	out, err := json.Marshal(r)
	if err != nil {
		// Every field is a plain value: this cannot happen.
		return []byte(`{"state":"unknown","effects":[],"dropped":true,"error":"encode result"}`)
	}
	return out
}

func decodeInput(raw []byte) (calling.Input, error) {
	var in Input
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("input is not JSON: %w", err)
	}
	errText := func(s string) error {
		if s == "" {
			return nil
		}
		return errors.New(s)
	}
	switch in.Type {
	case "login":
		return calling.Login{}, nil
	case "logout":
		return calling.Logout{}, nil
	case "accept":
		return calling.Accept{}, nil
	case "preview":
		return calling.Preview{}, nil
	case "reject":
		return calling.Reject{}, nil
	case "busy":
		return calling.LineBusy{}, nil
	case "hangup":
		return calling.Hangup{}, nil
	case "switch_audio":
		return calling.SwitchToAudio{}, nil
	case "open_door":
		return calling.OpenDoor{}, nil
	case "call":
		var t calling.CallType
		if err := t.UnmarshalText([]byte(in.Media)); err != nil {
			return nil, fmt.Errorf("call: %w", err)
		}
		return calling.Call{Users: in.Users, Type: t, Group: in.Group, RingGroup: in.RingGroup}, nil
	case "rejoin":
		var t calling.CallType
		if in.Call != "" {
			if err := t.UnmarshalText([]byte(in.Media)); err != nil {
				return nil, fmt.Errorf("rejoin: %w", err)
			}
		}
		return calling.Rejoin{Call: in.Call, Hub: in.Hub, Type: t}, nil
	case "control":
		k, err := controlKind(in.Control)
		if err != nil {
			return nil, err
		}
		return calling.Control{Control: calling.MediaControl{Kind: k, On: in.On}}, nil
	case "received":
		if !calling.ValidID(in.From) {
			return nil, fmt.Errorf("received: sender %q is not a valid ID", in.From)
		}
		if in.Group != "" && !calling.ValidID(in.Group) {
			return nil, fmt.Errorf("received: group %q is not a valid ID", in.Group)
		}
		msg, err := calling.Decode([]byte(in.Payload))
		if err != nil {
			return nil, fmt.Errorf("received from %s: %w", in.From, err)
		}
		return calling.Received{From: in.From, Group: in.Group, Msg: msg}, nil
	case "presence":
		if !calling.ValidID(in.User) {
			return nil, fmt.Errorf("presence: user %q is not a valid ID", in.User)
		}
		return calling.Presence{User: in.User, Online: in.Online}, nil
	case "link":
		return calling.LinkChanged{Up: in.Up}, nil
	case "timer":
		if in.Timer == nil {
			return nil, errors.New("timer: no timer")
		}
		t, err := in.Timer.decode()
		if err != nil {
			return nil, err
		}
		return calling.TimerFired{Timer: t}, nil
	case "media_joined":
		return calling.MediaJoined{Call: in.Call, Err: errText(in.Error)}, nil
	case "peer_joined", "peer_left", "media_out":
		if in.Session != "" && !calling.ValidID(in.Session) {
			return nil, fmt.Errorf("%s: session %q is not a valid ID", in.Type, in.Session)
		}
	}
	switch in.Type {
	case "peer_joined":
		return calling.PeerJoined{Call: in.Call, User: in.User, Session: in.Session}, nil
	case "peer_left":
		return calling.PeerLeft{Call: in.Call, User: in.User, Session: in.Session, Reason: in.Reason}, nil
	case "media_failed":
		err := errText(in.Error)
		if err == nil {
			err = errors.New("media failed")
		}
		return calling.MediaFailed{Call: in.Call, Err: err}, nil
	case "media_out":
		if in.Msg == nil {
			return nil, errors.New("media_out: no msg")
		}
		switch in.Msg.Type {
		case calling.MsgOffer, calling.MsgAnswer, calling.MsgCandidate:
		default:
			return nil, fmt.Errorf("media_out: %q is not a media message", in.Msg.Type)
		}
		return calling.MediaOut{Call: in.Call, To: in.To, Session: in.Session, Msg: *in.Msg}, nil
	default:
		return nil, fmt.Errorf("unknown input type %q", in.Type)
	}
}

// controlKind parses the controls the page has: the camera, the
// microphone's mute and hands-free.
func controlKind(s string) (calling.ControlKind, error) {
	switch k := calling.ParseControlKind(s); k {
	case calling.ControlCamera, calling.ControlMicMute, calling.ControlHandsFree:
		return k, nil
	}
	return calling.ControlUnknown, fmt.Errorf("control: unknown control %q", s)
}

func (t Timer) decode() (calling.Timer, error) {
	k := calling.ParseTimerKind(t.Kind)
	if k == calling.TimerUnknown {
		return calling.Timer{}, fmt.Errorf("timer: unknown kind %q", t.Kind)
	}
	return calling.Timer{Kind: k, Call: t.Call, Invite: t.Invite, User: t.User}, nil
}

func encodeTimer(t calling.Timer) (*Timer, string) {
	jt := &Timer{Kind: t.Kind.String(), Call: t.Call, Invite: t.Invite, User: t.User}
	return jt, jt.Kind + "/" + t.Call + "/" + t.Invite + "/" + t.User
}

func encodeEffect(e calling.Effect) (Effect, bool) {
	switch e := e.(type) {
	case calling.Send:
		b, err := calling.Encode(e.Msg)
		if err != nil {
			// The machine only builds valid messages; report rather than
			// send something the receivers would drop.
			return Effect{Type: "emit", Event: &Event{Name: "error", Error: fmt.Sprintf("encode %s: %v", e.Msg.Type, err)}}, true
		}
		return Effect{Type: "send", To: e.To, Group: e.Group, Payload: string(b)}, true
	case calling.Emit:
		return Effect{Type: "emit", Event: encodeEvent(e.Event)}, true
	case calling.StartTimer:
		t, key := encodeTimer(e.Timer)
		return Effect{Type: "start_timer", Timer: t, Key: key, AfterMS: e.After.Milliseconds()}, true
	case calling.StopTimer:
		t, key := encodeTimer(e.Timer)
		return Effect{Type: "stop_timer", Timer: t, Key: key}, true
	case calling.Disconnect:
		return Effect{Type: "disconnect"}, true
	case calling.DoorOpen:
		return Effect{Type: "door_open", By: e.By}, true
	case calling.Media:
		me, ok := encodeMedia(e.Do)
		if !ok {
			return Effect{}, false
		}
		return Effect{Type: "media", Media: me}, true
	default:
		return Effect{}, false
	}
}

func encodeMedia(e calling.MediaEffect) (*MediaEffect, bool) {
	switch e := e.(type) {
	case calling.JoinMedia:
		return &MediaEffect{Do: "join", Call: e.Call, Media: e.Type.String(), Hub: e.Hub, IsHub: e.IsHub}, true
	case calling.ConnectPeer:
		return &MediaEffect{Do: "connect_peer", Call: e.Call, User: e.User, Session: e.Session, Preview: e.Preview}, true
	case calling.DisconnectPeer:
		return &MediaEffect{Do: "disconnect_peer", Call: e.Call, User: e.User, Session: e.Session}, true
	case calling.LeaveMedia:
		return &MediaEffect{Do: "leave", Call: e.Call}, true
	case calling.Signal:
		msg := e.Msg
		return &MediaEffect{Do: "signal", Call: e.Call, From: e.From, Session: e.Session, Msg: &msg}, true
	case calling.Ring:
		return &MediaEffect{Do: "ring", Tone: e.Tone.String()}, true
	case calling.SetVideo:
		return &MediaEffect{Do: "set_video", Call: e.Call, On: e.On}, true
	case calling.MediaControl:
		return &MediaEffect{Do: "control", Control: e.Kind.String(), On: e.On, User: e.User}, true
	default:
		return nil, false
	}
}

func encodeEvent(ev calling.Event) *Event {
	switch ev := ev.(type) {
	case calling.Error:
		return &Event{Name: "error", Error: ev.Err.Error()}
	case calling.Invited:
		return &Event{Name: "invited", Sponsor: ev.Sponsor, Users: ev.Users, FromGroup: ev.FromGroup, Group: ev.Group, Media: ev.Type.String(), Call: ev.Call}
	case calling.InviteeListUpdate:
		return &Event{Name: "invitee_list_update", Users: ev.Users}
	case calling.UserEnter:
		return &Event{Name: "user_enter", User: ev.User}
	case calling.UserLeave:
		return &Event{Name: "user_leave", User: ev.User}
	case calling.Rejected:
		return &Event{Name: "rejected", User: ev.User}
	case calling.LineBusyEvent:
		return &Event{Name: "line_busy", User: ev.User}
	case calling.NoResp:
		return &Event{Name: "no_resp", User: ev.User}
	case calling.CallingCancel:
		return &Event{Name: "calling_cancel", Sponsor: ev.Sponsor, Reason: ev.Reason}
	case calling.CallingTimeout:
		return &Event{Name: "calling_timeout"}
	case calling.CallEnd:
		return &Event{Name: "call_end", Reason: ev.Reason, DurationMS: ev.Duration.Milliseconds()}
	case calling.UserVideoAvailable:
		return &Event{Name: "user_video_available", User: ev.User, Available: ev.Available}
	case calling.UserAudioAvailable:
		return &Event{Name: "user_audio_available", User: ev.User, Available: ev.Available}
	case calling.UserVoiceVolume:
		return &Event{Name: "user_voice_volume", User: ev.User, Volume: ev.Volume}
	case calling.SwitchToAudioResult:
		return &Event{Name: "switch_to_audio_result", OK: ev.OK, Message: ev.Message}
	case calling.KickedOffline:
		return &Event{Name: "kicked_offline"}
	case calling.StateChanged:
		return &Event{Name: "state_changed", From: ev.From.String(), To: ev.To.String()}
	case calling.DoorResult:
		return &Event{Name: "door_result", By: ev.By, OK: ev.OK, Reason: ev.Reason}
	default:
		return &Event{Name: "unknown", Message: fmt.Sprintf("%T", ev)}
	}
}
