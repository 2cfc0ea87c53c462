package audio

import (
	"sync/atomic"

	"github.com/intercomd/intercomd/hw/audio/jitter"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// maxPacketSamples is the longest Opus packet: 120 ms.
const maxPacketSamples = SampleRate * 120 / 1000

// Party is one remote participant whose audio plays through the speaker.
// Push, Level, Stats and Close are safe for concurrent use.
type Party struct {
	id     string
	jb     *jitter.Buffer
	closed atomic.Bool
	level  atomic.Int32
	decErr atomic.Int64
	fec    atomic.Int64

	// Owned by the engine's processing goroutine.
	dec     *opus.Decoder
	pkt     []byte
	pcm     []int16 // decoded samples not yet played: pcm[:pcmLen]
	pcmLen  int
	lastDur int // samples per channel of the last packet
	meter   Meter
}

// PartyStats reports a party's receive path.
type PartyStats struct {
	Jitter       jitter.Stats
	DecodeErrors int64 // packets that failed to decode (concealed instead)
	FECDecodes   int64 // lost packets decoded from the next packet's FEC data (concealed when it had none)
}

func newParty(id string, cfg *Config) (*Party, error) {
	dec, err := opus.NewDecoder(SampleRate, Channels)
	if err != nil {
		return nil, err
	}
	frames := func(d int64) int { return int((d + int64(FrameDuration) - 1) / int64(FrameDuration)) }
	return &Party{
		id: id,
		jb: jitter.New(jitter.Config{
			Target:   frames(int64(cfg.JitterTarget)),
			Capacity: frames(int64(cfg.JitterMax)),
		}),
		dec:     dec,
		pkt:     make([]byte, 1500),
		pcm:     make([]int16, FrameSamples+maxPacketSamples),
		lastDur: FrameSamples,
	}, nil
}

// ID returns the identifier given to AddParty.
func (p *Party) ID() string { return p.id }

// Push hands one received RTP packet (sequence number, timestamp, Opus
// payload) to the party's jitter buffer. The payload is copied. Packets may
// arrive out of order; late and duplicate packets are dropped.
func (p *Party) Push(seq uint16, ts uint32, payload []byte) {
	if p.closed.Load() {
		return
	}
	p.jb.Push(seq, ts, payload)
}

// Level returns the party's voice level, 0..100, over the last 300 ms.
func (p *Party) Level() int { return int(p.level.Load()) }

// Stats returns the party's counters.
func (p *Party) Stats() PartyStats {
	return PartyStats{Jitter: p.jb.Stats(), DecodeErrors: p.decErr.Load(), FECDecodes: p.fec.Load()}
}

// Close removes the party from the mix. Further Pushes are ignored.
func (p *Party) Close() { p.closed.Store(true) }

// render writes the party's next len(out) samples into out, pulling packets
// from the jitter buffer, decoding them and concealing losses. Engine
// goroutine only.
func (p *Party) render(out []int16) {
	for p.pcmLen < len(out) {
		dst := p.pcm[p.pcmLen:]
		o := p.jb.Pop(p.pkt)
		var n int
		var err error
		switch o.Kind {
		case jitter.KindPacket:
			n, err = p.dec.Decode(o.Payload, dst)
			if err == nil {
				p.lastDur = n
			}
		case jitter.KindLost:
			d := dst[:min(p.lastDur, len(dst))]
			if len(o.Payload) > 0 {
				n, err = p.dec.DecodeFEC(o.Payload, d)
				if err == nil {
					p.fec.Add(1)
				}
			} else {
				n, err = p.dec.Conceal(d)
			}
		default:
			// Nothing to play: silence for the rest of this frame.
			clear(dst[:len(out)-p.pcmLen])
			n = len(out) - p.pcmLen
		}
		if err != nil {
			p.decErr.Add(1)
			n, err = p.dec.Conceal(dst[:min(p.lastDur, len(dst))])
			if err != nil {
				n = min(p.lastDur, len(dst))
				clear(dst[:n])
			}
		}
		p.pcmLen += n
	}
	copy(out, p.pcm[:len(out)])
	p.pcmLen = copy(p.pcm, p.pcm[len(out):p.pcmLen])
	if p.meter.Add(out) {
		p.level.Store(int32(p.meter.Level()))
	}
}

func (p *Party) free() {
	p.closed.Store(true)
	p.dec.Close()
}
