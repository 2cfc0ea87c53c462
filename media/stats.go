package media

import (
	"sync"
	"time"

	"github.com/pion/interceptor/pkg/stats"
)

// PeerStats is the call quality of one PeerConnection, from RTCP.
type PeerStats struct {
	Call, User string
	Session    string // the party's device (login session)
	State      string // the PeerConnection's state
	// RTT is the round-trip time measured from the party's receiver
	// reports (0 until one arrived).
	RTT time.Duration
	// FractionLost is the share of what this side sent that the party
	// reported lost in its last report, 0..1 (the worst stream).
	FractionLost float64
	// PacketsLost counts packets lost on the way in (all streams).
	PacketsLost int64
	// Jitter is the largest interarrival jitter of the streams received.
	Jitter time.Duration
	// BytesSent and BytesReceived count RTP payload bytes since the start.
	BytesSent, BytesReceived uint64
	// SendBitrate and RecvBitrate are in bits per second over the last
	// interval.
	SendBitrate, RecvBitrate float64
}

type statSample struct {
	at        time.Time
	sent, rcv uint64
}

// getterBox carries the stats Getter the interceptor hands out while a
// PeerConnection is created; only the loop creates PeerConnections.
type getterBox struct {
	mu sync.Mutex
	g  stats.Getter
}

func (b *getterBox) put(g stats.Getter) {
	b.mu.Lock()
	b.g = g
	b.mu.Unlock()
}

func (b *getterBox) take() stats.Getter {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.g
	b.g = nil
	return g
}

// collectStats measures every peer, logs at debug and publishes for Stats.
func (m *Media) collectStats() {
	var all []PeerStats
	now := time.Now()
	for _, c := range m.calls {
		for _, p := range c.peers {
			s := m.peerStats(p, now)
			m.log.Debug("call quality", "call", s.Call, "user", s.User, "session", s.Session, "state", s.State,
				"rtt", s.RTT, "fraction_lost", s.FractionLost, "lost", s.PacketsLost, "jitter", s.Jitter,
				"send_bps", int(s.SendBitrate), "recv_bps", int(s.RecvBitrate))
			all = append(all, s)
		}
	}
	m.statsMu.Lock()
	m.stats = all
	m.statsMu.Unlock()
}

func (m *Media) peerStats(p *peer, now time.Time) PeerStats {
	s := PeerStats{Call: p.call.id, User: p.user, Session: p.session, State: p.pc.ConnectionState().String()}
	if p.stats == nil {
		return s
	}
	for _, snd := range p.pc.GetSenders() {
		if snd.Track() == nil {
			continue
		}
		for _, enc := range snd.GetParameters().Encodings {
			st := p.stats.Get(uint32(enc.SSRC))
			if st == nil {
				continue
			}
			s.BytesSent += st.OutboundRTPStreamStats.BytesSent
			s.RTT = max(s.RTT, st.RemoteInboundRTPStreamStats.RoundTripTime)
			s.FractionLost = max(s.FractionLost, st.RemoteInboundRTPStreamStats.FractionLost)
		}
	}
	for _, rcv := range p.pc.GetReceivers() {
		for _, tr := range rcv.Tracks() {
			st := p.stats.Get(uint32(tr.SSRC()))
			if st == nil {
				continue
			}
			in := st.InboundRTPStreamStats
			s.BytesReceived += in.BytesReceived
			s.PacketsLost += in.PacketsLost
			s.Jitter = max(s.Jitter, time.Duration(in.Jitter*float64(time.Second))) // seconds
		}
	}
	if !p.prev.at.IsZero() {
		if dt := now.Sub(p.prev.at).Seconds(); dt > 0 {
			s.SendBitrate = float64(s.BytesSent-min(s.BytesSent, p.prev.sent)) * 8 / dt
			s.RecvBitrate = float64(s.BytesReceived-min(s.BytesReceived, p.prev.rcv)) * 8 / dt
		}
	}
	p.prev = statSample{at: now, sent: s.BytesSent, rcv: s.BytesReceived}
	return s
}
