// Package jitter is the per-party receive buffer of intercomd's audio engine:
// it takes RTP audio packets in arrival order (Push) and hands them out in
// sequence order at the playout rate (Pop), reporting each missing packet so
// the decoder can conceal it.
//
// # Contract
//
// Packets are keyed by their RTP sequence number, unwrapped to 64 bits against
// the highest number seen; the RTP timestamp travels with the packet. The
// buffer
//
//   - waits until Target packets are held (or the first one has waited
//     2×Target pops) before playout starts, which absorbs network jitter;
//   - delivers packets in sequence order, whatever their arrival order;
//   - reports a gap as KindLost, handing out the following packet when it is
//     already there so the caller can recover the loss from Opus in-band FEC;
//   - drops late packets (behind the playout point) and duplicates;
//   - never holds more than Capacity packets: a packet beyond the window
//     pushes the playout point forward (oldest packets are dropped);
//   - trims one packet when it has held more than Target+2 packets for 25
//     consecutive pops, so latency returns to the target after a burst or
//     when the sender's clock runs fast;
//   - when it runs dry it reports KindLost for up to MaxConceal pops without
//     advancing (a late packet still plays), then KindSilence and buffers
//     again to Target before resuming;
//   - resets on a sequence jump larger than 4×Capacity or after Capacity
//     consecutive late packets (a restarted sender).
//
// The buffer reads no clock: one Pop per packet duration drives it, which
// keeps it deterministic and easy to test.
//
// # Concurrency
//
// A Buffer is safe for concurrent use: typically Push runs on the media
// layer's RTP reader goroutine and Pop on the engine's processing goroutine.
// Push copies the payload into preallocated storage; Pop copies it out into a
// caller-supplied buffer, so neither allocates in steady state.
package jitter

import "sync"

// Kind says what Pop produced.
type Kind int

// Kinds of Pop results.
const (
	KindUnknown Kind = iota
	// KindPacket: Out.Payload holds the next packet to decode.
	KindPacket
	// KindLost: the next packet is missing; conceal it. Out.Payload, when
	// not empty, is the packet after the missing one (for FEC recovery); it
	// is returned again as KindPacket by the next Pop.
	KindLost
	// KindSilence: nothing to play (buffering, or the party is silent).
	KindSilence
)

func (k Kind) String() string {
	switch k {
	case KindPacket:
		return "packet"
	case KindLost:
		return "lost"
	case KindSilence:
		return "silence"
	default:
		return "unknown"
	}
}

// Out is one Pop result.
type Out struct {
	Kind    Kind
	Seq     uint16
	TS      uint32
	Payload []byte // a prefix of the buffer given to Pop
}

// Config sizes a Buffer. Zero fields take the defaults noted.
type Config struct {
	Target     int // packets held before playout starts; default 3 (60 ms of 20 ms packets)
	Capacity   int // packets held at most; default 16
	MaxConceal int // pops concealed while dry before rebuffering; default 5
	MaxPayload int // bytes per packet, larger ones are dropped; default 1500
}

// Stats counts what the buffer did since it was created.
type Stats struct {
	Pushed    int // packets stored
	Played    int // packets handed out as KindPacket
	Lost      int // gaps reported as KindLost
	Dry       int // KindLost reported while nothing was held
	Late      int // packets dropped for arriving after their turn
	Duplicate int // packets dropped as already held
	Dropped   int // packets dropped because the window overflowed
	Trimmed   int // packets dropped to bring latency back to the target
	Oversize  int // packets dropped for exceeding MaxPayload
	Resets    int // stream restarts detected
}

type slot struct {
	valid bool
	ext   uint64
	ts    uint32
	data  []byte
}

// Buffer is a jitter buffer for one RTP audio stream.
type Buffer struct {
	mu  sync.Mutex
	cfg Config

	slots   []slot
	count   int    // valid slots
	haveRef bool   // highest is meaningful
	highest uint64 // highest extended sequence number received
	next    uint64 // next extended sequence number to play (or floor while buffering)
	playing bool

	waitPops int // pops spent buffering with at least one packet held
	dryPops  int // consecutive pops with nothing held while playing
	overPops int // consecutive pops with more than Target+2 held
	lateRun  int // consecutive late packets
	stats    Stats

	floor    uint64 // while buffering after playout: first sequence number still playable
	hasFloor bool
}

// New returns an empty buffer.
func New(cfg Config) *Buffer {
	if cfg.Target <= 0 {
		cfg.Target = 3
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 16
	}
	if cfg.Capacity < cfg.Target+3 {
		cfg.Capacity = cfg.Target + 3
	}
	if cfg.MaxConceal <= 0 {
		cfg.MaxConceal = 5
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 1500
	}
	b := &Buffer{cfg: cfg, slots: make([]slot, cfg.Capacity)}
	for i := range b.slots {
		b.slots[i].data = make([]byte, 0, cfg.MaxPayload)
	}
	return b
}

// Config returns the effective configuration (defaults applied).
func (b *Buffer) Config() Config { return b.cfg }

// Stats returns the counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Len returns the number of packets held.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// Reset empties the buffer and forgets the stream position.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reset()
}

func (b *Buffer) reset() {
	for i := range b.slots {
		b.slots[i].valid = false
	}
	b.count = 0
	b.haveRef = false
	b.playing = false
	b.hasFloor = false
	b.waitPops, b.dryPops, b.overPops, b.lateRun = 0, 0, 0, 0
}

func (b *Buffer) slotFor(ext uint64) *slot {
	return &b.slots[ext%uint64(len(b.slots))]
}

// unwrap extends seq to 64 bits, choosing the value closest to highest.
func (b *Buffer) unwrap(seq uint16) uint64 {
	diff := int64(int16(seq - uint16(b.highest)))
	return uint64(int64(b.highest) + diff)
}

// Push stores one packet. payload is copied; empty payloads are ignored.
func (b *Buffer) Push(seq uint16, ts uint32, payload []byte) {
	if len(payload) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(payload) > b.cfg.MaxPayload {
		b.stats.Oversize++
		return
	}
	if !b.haveRef {
		// Start far from zero so unwrapping backwards never underflows.
		b.highest = 1<<32 + uint64(seq)
		b.next = b.highest
		b.haveRef = true
	}
	ext := b.unwrap(seq)
	capacity := uint64(len(b.slots))

	if ext+4*capacity < b.highest || ext > b.highest+4*capacity {
		// A jump no jitter explains: the sender restarted.
		b.stats.Resets++
		b.reset()
		b.highest = 1<<32 + uint64(seq)
		b.next = b.highest
		b.haveRef = true
		ext = b.highest
	}

	late := ext < b.next
	if !b.playing {
		// While buffering, an earlier packet may still arrive and be played
		// first, unless it precedes what was already played or no longer
		// fits the window.
		late = (b.hasFloor && ext < b.floor) || ext+capacity <= b.highest
	}
	if late {
		b.stats.Late++
		b.lateRun++
		if b.lateRun >= len(b.slots) {
			// Many consecutive late packets: the stream moved backwards.
			b.stats.Resets++
			b.reset()
			b.highest = 1<<32 + uint64(seq)
			b.next = b.highest
			b.haveRef = true
			b.store(b.highest, ts, payload)
		}
		return
	}
	b.lateRun = 0
	if !b.playing && (b.count == 0 || ext < b.next) {
		b.next = ext
	}

	// Keep the window [next, next+capacity): drop the oldest to make room.
	for ext >= b.next+capacity {
		s := b.slotFor(b.next)
		if s.valid && s.ext == b.next {
			s.valid = false
			b.count--
			b.stats.Dropped++
		}
		b.next++
	}
	s := b.slotFor(ext)
	if s.valid && s.ext == ext {
		b.stats.Duplicate++
		return
	}
	b.store(ext, ts, payload)
}

func (b *Buffer) store(ext uint64, ts uint32, payload []byte) {
	s := b.slotFor(ext)
	if s.valid {
		// Only possible for a stale slot outside the window.
		b.count--
	}
	s.valid = true
	s.ext = ext
	s.ts = ts
	s.data = append(s.data[:0], payload...)
	b.count++
	b.stats.Pushed++
	if ext > b.highest {
		b.highest = ext
	}
}

// Pop returns what to play for the next packet interval, copying any payload
// into buf (which should hold MaxPayload bytes).
func (b *Buffer) Pop(buf []byte) Out {
	b.mu.Lock()
	defer b.mu.Unlock()

	if !b.playing {
		if b.count == 0 {
			return Out{Kind: KindSilence}
		}
		b.waitPops++
		if b.count < b.cfg.Target && b.waitPops < 2*b.cfg.Target {
			return Out{Kind: KindSilence}
		}
		b.playing = true
		b.waitPops = 0
		b.dryPops = 0
		b.overPops = 0
		// Start at the oldest packet held.
		for !b.has(b.next) {
			b.next++
		}
	}

	if b.count == 0 {
		b.dryPops++
		if b.dryPops > b.cfg.MaxConceal {
			b.playing = false
			b.floor, b.hasFloor = b.next, true
			return Out{Kind: KindSilence}
		}
		b.stats.Dry++
		return Out{Kind: KindLost, Seq: uint16(b.next)}
	}
	b.dryPops = 0

	// Trim latency that stayed above target.
	if int(b.highest-b.next)+1 > b.cfg.Target+2 {
		b.overPops++
		if b.overPops >= 25 {
			b.overPops = 0
			if s := b.slotFor(b.next); s.valid && s.ext == b.next {
				s.valid = false
				b.count--
			}
			b.next++
			b.stats.Trimmed++
		}
	} else {
		b.overPops = 0
	}

	s := b.slotFor(b.next)
	if s.valid && s.ext == b.next {
		n := copy(buf, s.data)
		out := Out{Kind: KindPacket, Seq: uint16(s.ext), TS: s.ts, Payload: buf[:n]}
		s.valid = false
		b.count--
		b.next++
		b.stats.Played++
		return out
	}
	// A gap with later packets held: this one is lost.
	out := Out{Kind: KindLost, Seq: uint16(b.next)}
	b.next++
	b.stats.Lost++
	if f := b.slotFor(b.next); f.valid && f.ext == b.next {
		n := copy(buf, f.data)
		out.Payload = buf[:n]
		out.TS = f.ts
	}
	return out
}

func (b *Buffer) has(ext uint64) bool {
	s := b.slotFor(ext)
	return s.valid && s.ext == ext
}
