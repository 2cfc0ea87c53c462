package agent

import "github.com/intercomd/intercomd/calling"

// SignalMedia stands in for media where none runs (signaling tests, a
// softphone started without media): it completes an offer/answer exchange
// with placeholder SDP through the real signaling path and then reports the
// peers joined, so calls connect exactly as they would with media, minus
// audio and video.
type SignalMedia struct {
	// Post hands inputs to the agent (Agent.Post).
	Post func(calling.Input)
}

const placeholderSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=intercomd-signal-only\r\nt=0 0\r\n"

// Do implements Media.
func (s *SignalMedia) Do(e calling.MediaEffect) {
	switch e := e.(type) {
	case calling.JoinMedia:
		s.Post(calling.MediaJoined{Call: e.Call})
	case calling.ConnectPeer:
		s.Post(calling.MediaOut{Call: e.Call, To: e.User, Session: e.Session, Msg: calling.Message{Type: calling.MsgOffer, SDP: placeholderSDP}})
	case calling.Signal:
		switch e.Msg.Type {
		case calling.MsgOffer:
			s.Post(calling.MediaOut{Call: e.Call, To: e.From, Session: e.Session, Msg: calling.Message{Type: calling.MsgAnswer, SDP: placeholderSDP}})
			s.Post(calling.PeerJoined{Call: e.Call, User: e.From, Session: e.Session})
		case calling.MsgAnswer:
			s.Post(calling.PeerJoined{Call: e.Call, User: e.From, Session: e.Session})
		}
	}
}
