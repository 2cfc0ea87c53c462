package audio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/hw/audio/aec"
	"github.com/intercomd/intercomd/hw/audio/opus"
)

// Errors reported by the engine.
var (
	// ErrNoDevice: there is no sound hardware, no usable backend, or no
	// device matching the configured name. Config.NullFallback turns it
	// into a fallback to the null backend.
	ErrNoDevice = errors.New("audio: no sound device")
	// ErrDeviceLost: the backend stopped the device on its own (unplugged,
	// driver error). Reported through Err once Done is closed.
	ErrDeviceLost = errors.New("audio: device stopped unexpectedly")
	// ErrDeviceStalled: the device delivered no audio for
	// Config.StallTimeout.
	ErrDeviceStalled = errors.New("audio: device stalled")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("audio: engine closed")
)

// maxBacklog is how many captured frames may wait for the processing loop
// before the oldest are skipped.
const maxBacklog = 5

// idleFrames is how many frames the engine processes with nothing to do
// (no encoded-frame consumer, no party, no tone) before it pauses the
// device: one second, which lets the speaker queue and a tone's fade play
// out, and keeps a hang-up followed by a new call from stopping and
// restarting the device in between.
const idleFrames = 50

// Frame is one encoded microphone frame.
type Frame struct {
	Opus      []byte        // one Opus packet; the receiver owns it
	Duration  time.Duration // always FrameDuration
	Timestamp uint32        // 48 kHz sample clock of the frame's first sample
}

// Levels are voice levels 0..100 over the last 300 ms.
type Levels struct {
	Mic     int            // local microphone (0 while muted)
	Parties map[string]int // by party ID
}

// Stats counts the engine's glitches and work since New.
type Stats struct {
	Frames       int64 // 20 ms frames processed
	Underruns    int64 // device callbacks that found too few samples to play
	Overruns     int64 // device callbacks whose capture did not fit the queue
	Skipped      int64 // captured frames skipped because processing fell behind
	EncodeErrors int64
	Pauses       int64 // times the device was paused for want of work
	Paused       bool  // the device is paused right now
}

// Engine is intercomd's audio engine. See the package documentation.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	dev  *device
	info Info

	capRing, playRing *ring
	feed              *feed         // device callback -> processing loop
	lost              chan struct{} // device stop callback -> processing loop
	kick              chan struct{} // new work (OnEncoded, AddParty, Ring) -> paused loop
	paused            atomic.Bool   // the loop has stopped the device for want of work
	pauses            atomic.Int64
	stopping          atomic.Bool // we are stopping the device ourselves
	running           atomic.Bool // the device is started

	muted     atomic.Bool
	volume    atomic.Int32 // percent
	tone      atomic.Int64 // generation<<8 | Tone
	onEncoded atomic.Pointer[func(Frame)]
	onLevels  atomic.Pointer[func(Levels)]
	onCapture atomic.Pointer[func([]int16)]
	clip      atomic.Pointer[clip] // playing (Play)
	micLevel  atomic.Int32

	frames, skipped, encodeErrs atomic.Int64

	mu      sync.Mutex
	parties []*Party
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	err     error

	prime []int16 // silence to prime the speaker queue with; never written

	// Owned by the processing goroutine.
	enc      *opus.Encoder
	pktBuf   []byte
	capture  []int16
	acc      []int32
	out      []int16
	scratch  []int16
	active   []*Party
	gen      toneGen
	toneSeen int64
	lim      limiter
	micMeter Meter
	ts       uint32
	ticks    int
	echo     *aec.Canceller // nil without echo cancellation
	refs     [][]int16      // the last frames played, oldest at refPos
	refPos   int
}

// New validates cfg, opens the duplex device and creates the encoder. The
// device runs once Start is called. With Config.NullFallback set, a missing
// device is replaced by the null backend and a warning is logged; Info tells.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	cfg.Logger = cfg.Logger.With("component", "audio") // the device's messages too
	e := &Engine{
		cfg:  cfg,
		log:  cfg.Logger,
		lost: make(chan struct{}, 1),
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
		// The queues hold 500 ms: far more than the loop ever lags.
		capRing:  newRing(SampleRate / 2),
		playRing: newRing(SampleRate / 2),
		pktBuf:   make([]byte, opus.MaxPacketSize),
		capture:  make([]int16, FrameSamples),
		acc:      make([]int32, FrameSamples),
		out:      make([]int16, FrameSamples),
		scratch:  make([]int16, FrameSamples),
		active:   make([]*Party, 0, 16),
	}
	e.prime = make([]int16, primeSamples(e.cfg.Period))
	e.volume.Store(100)
	enc, err := opus.NewEncoder(opus.EncoderConfig{
		Bitrate:           cfg.Bitrate,
		Complexity:        cfg.Complexity,
		FEC:               cfg.FEC,
		PacketLossPercent: 10 * b2i(cfg.FEC),
	})
	if err != nil {
		return nil, fmt.Errorf("audio: %w", err)
	}
	e.enc = enc

	if e.feed, err = newFeed(e.capRing, e.playRing); err != nil {
		enc.Close()
		return nil, err
	}
	defer func() {
		if e.dev == nil {
			enc.Close()
			e.closeEcho()
			e.feed.close()
		}
	}()
	dev, err := openDevice(&e.cfg, e.feed, e.onStop)
	if err != nil && errors.Is(err, ErrNoDevice) && cfg.NullFallback && cfg.Backend != BackendNull {
		e.log.Warn("no usable sound device, falling back to the null backend: the device will be mute and deaf",
			"backend", cfg.Backend.String(), "playback", cfg.Playback, "capture", cfg.Capture, "err", err)
		nullCfg := e.cfg
		nullCfg.Backend = BackendNull
		dev, err = openDevice(&nullCfg, e.feed, e.onStop)
		if dev != nil {
			dev.info.Fallback = true
		}
	}
	if err != nil {
		return nil, err
	}
	if cfg.EchoCancel && (dev.info.Backend != BackendNull || cfg.Source != nil) {
		if e.echo, err = aec.New(SampleRate, FrameSamples, e.cfg.EchoTail); err != nil {
			dev.close()
			return nil, fmt.Errorf("audio: %w", err)
		}
		// A frame reaches the speaker after the queue primed ahead of it;
		// the reference lags by that much (whole frames, never more) plus
		// EchoDelay, and the filter finds the rest of the echo path.
		lag := (len(e.prime) + int(e.cfg.EchoDelay.Seconds()*SampleRate)) / FrameSamples
		e.refs = make([][]int16, max(lag, 1))
		for i := range e.refs {
			e.refs[i] = make([]int16, FrameSamples)
		}
	}
	e.dev = dev
	e.info = dev.info
	e.log.Info("audio device open", "backend", e.info.Backend.String(), "playback", e.info.Playback,
		"capture", e.info.Capture, "fallback", e.info.Fallback, "echo_cancel", e.echo != nil)
	return e, nil
}

// primeSamples is the speaker queue's margin for a device period: a callback
// takes one period at a time, and the loop needs time to refill it.
func primeSamples(period time.Duration) int {
	return int(period.Milliseconds())*SampleRate/1000 + 2*FrameSamples
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Info describes the device in use.
func (e *Engine) Info() Info { return e.info }

// Start starts the device and the processing goroutine. They run until ctx
// is cancelled, Close is called or the device fails (see Done and Err).
// While the engine has nothing to do the goroutine pauses the device (see
// the package documentation).
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.started {
		return errors.New("audio: engine already started")
	}
	// Prime the speaker with a period and two frames of silence: the loop
	// replaces each captured frame with one played frame, keeping this margin.
	e.playRing.Write(e.prime)
	e.stopping.Store(false)
	if err := e.dev.dev.Start(); err != nil {
		return fmt.Errorf("start %s audio device: %w", e.info.Backend, err)
	}
	e.running.Store(true)
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	e.started = true
	go e.run(runCtx)
	return nil
}

// Done is closed when the processing goroutine has ended (after Start).
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err returns why the engine stopped on its own (ErrDeviceLost or
// ErrDeviceStalled, wrapped), or nil while running or after a normal stop.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Close stops the device, waits for the processing goroutine, and frees the
// device, the encoder and every party's decoder. It is safe to call more
// than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started, cancel := e.started, e.cancel
	e.mu.Unlock()
	if started {
		cancel()
		<-e.done
	} else {
		close(e.done)
	}
	e.dev.close()
	e.feed.close()
	e.enc.Close()
	e.closeEcho()
	e.mu.Lock()
	for _, p := range e.parties {
		p.free()
	}
	e.parties = nil
	e.mu.Unlock()
	return nil
}

func (e *Engine) closeEcho() {
	if e.echo != nil {
		e.echo.Close()
	}
}

// Halt puts the audio in its safe state at once: no tone, microphone muted,
// speaker volume 0. Parties stay registered; SetMuted and SetVolume undo it.
func (e *Engine) Halt() {
	e.StopRing()
	e.SetMuted(true)
	e.SetVolume(0)
}

// AddParty adds a remote participant to the speaker mix. A party already
// registered under id is closed and replaced.
func (e *Engine) AddParty(id string) (*Party, error) {
	p, err := newParty(id, &e.cfg)
	if err != nil {
		return nil, fmt.Errorf("audio: add party %q: %w", id, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		p.free()
		return nil, ErrClosed
	}
	for _, old := range e.parties {
		if old.id == id {
			old.Close()
		}
	}
	e.parties = append(e.parties, p)
	e.wakeUp()
	return p, nil
}

// wakeUp tells a paused processing loop that there is work again.
func (e *Engine) wakeUp() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// OnEncoded sets the function receiving each encoded microphone frame (nil
// stops encoding). It runs on the processing goroutine every 20 ms and must
// not block; one call can feed any number of peer connections.
func (e *Engine) OnEncoded(fn func(Frame)) {
	if fn == nil {
		e.onEncoded.Store(nil)
		return
	}
	e.onEncoded.Store(&fn)
	e.wakeUp()
}

// OnLevels sets the function receiving voice levels every 300 ms (nil to
// stop). It runs on the processing goroutine and must not block.
func (e *Engine) OnLevels(fn func(Levels)) {
	if fn == nil {
		e.onLevels.Store(nil)
		return
	}
	e.onLevels.Store(&fn)
}

// SetMuted mutes or unmutes the microphone: while muted the encoded stream
// carries silence (it keeps flowing, so RTP timing stays regular).
func (e *Engine) SetMuted(m bool) { e.muted.Store(m) }

// Muted reports whether the microphone is muted.
func (e *Engine) Muted() bool { return e.muted.Load() }

// SetVolume sets the speaker volume in percent of unity gain, 0..200
// (clamped). 0 silences the speaker.
func (e *Engine) SetVolume(percent int) { e.volume.Store(int32(max(0, min(200, percent)))) }

// Volume returns the speaker volume in percent.
func (e *Engine) Volume() int { return int(e.volume.Load()) }

// MicLevel returns the microphone's voice level, 0..100, over the last 300 ms.
func (e *Engine) MicLevel() int { return int(e.micLevel.Load()) }

// Ring starts a call progress tone from the beginning of its cadence,
// replacing any tone playing. It is mixed into the speaker only.
func (e *Engine) Ring(t Tone) error {
	if t.cadence() == nil {
		return fmt.Errorf("audio: ring: unknown tone %v", t)
	}
	e.setTone(t)
	return nil
}

// StopRing silences the tone from the next frame on.
func (e *Engine) StopRing() { e.setTone(ToneUnknown) }

func (e *Engine) setTone(t Tone) {
	for {
		old := e.tone.Load()
		if e.tone.CompareAndSwap(old, (old>>8+1)<<8|int64(t)) {
			if t != ToneUnknown {
				e.wakeUp()
			}
			return
		}
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	overruns, underruns := e.feed.counts()
	return Stats{
		Frames:       e.frames.Load(),
		Underruns:    underruns,
		Overruns:     overruns,
		Skipped:      e.skipped.Load(),
		EncodeErrors: e.encodeErrs.Load(),
		Pauses:       e.pauses.Load(),
		Paused:       e.paused.Load(),
	}
}

// onStop is malgo's stop callback, on a device thread.
func (e *Engine) onStop() {
	if e.stopping.Load() {
		return
	}
	select {
	case e.lost <- struct{}{}:
	default:
	}
	e.feed.poke()
}

// run is the processing loop: one iteration per captured frame.
func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	// The loop waits on the device's eventfd; cancelling ctx wakes it.
	defer context.AfterFunc(ctx, e.feed.poke)()
	var failure error
	defer func() {
		e.stopping.Store(true)
		if e.running.Swap(false) {
			if err := e.dev.dev.Stop(); err != nil {
				e.log.Warn("stop audio device", "err", err)
			}
		}
		if failure != nil {
			e.log.Error("audio device failed", "err", failure)
			e.mu.Lock()
			e.err = failure
			e.mu.Unlock()
		}
	}()
	idle := 0
	for {
		if idle >= idleFrames {
			idle = 0
			if err := e.pause(ctx); err != nil {
				failure = err
				return
			}
		}
		err := e.feed.wait(time.Now().Add(e.cfg.StallTimeout))
		if ctx.Err() != nil {
			return
		}
		select {
		case <-e.lost:
			failure = fmt.Errorf("%w (%s playback %q, capture %q)", ErrDeviceLost, e.info.Backend, e.info.Playback, e.info.Capture)
			e.running.Store(false)
			return
		default:
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			failure = fmt.Errorf("%w: no audio for %v (%s playback %q, capture %q)", ErrDeviceStalled, e.cfg.StallTimeout, e.info.Backend, e.info.Playback, e.info.Capture)
			return
		}
		if err != nil {
			failure = fmt.Errorf("%w: wait for the %s device: %w", ErrDeviceLost, e.info.Backend, err)
			return
		}
		for e.capRing.Len() >= FrameSamples && ctx.Err() == nil {
			e.capRing.Read(e.capture)
			if e.capRing.Len() > maxBacklog*FrameSamples {
				// The loop has fallen behind (an overloaded CPU): skip
				// the oldest captured audio rather than let latency grow.
				e.skipped.Add(1)
				continue
			}
			e.process()
			if e.busy() {
				idle = 0
			} else {
				idle++
			}
		}
	}
}

// busy reports whether the engine has work: a consumer of encoded or
// captured frames, a party or a clip to play or a tone ringing.
func (e *Engine) busy() bool {
	if e.onEncoded.Load() != nil || e.onCapture.Load() != nil || e.clip.Load() != nil || Tone(e.tone.Load()&0xff) != ToneUnknown {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.parties {
		if !p.closed.Load() {
			return true
		}
	}
	return false
}

// pause stops the device, waits until the engine is busy again (or ctx
// ends) and restarts it with a freshly primed speaker queue. Stopped, the
// device runs no callback, so both queues belong to this goroutine.
func (e *Engine) pause(ctx context.Context) error {
	e.stopping.Store(true)
	if err := e.dev.dev.Stop(); err != nil {
		return fmt.Errorf("%w: pause %s device: %w", ErrDeviceLost, e.info.Backend, err)
	}
	e.running.Store(false)
	e.paused.Store(true)
	e.pauses.Add(1)
	e.capRing.discard()
	e.playRing.discard()
	e.micMeter = Meter{}
	e.micLevel.Store(0)
	if e.echo != nil {
		// The echo path may change while paused (another speaker volume,
		// a moved device): start learning afresh, from silence.
		e.echo.Reset()
		for _, r := range e.refs {
			clear(r)
		}
	}
	e.log.Debug("audio device paused: nothing to encode or play")
	for !e.busy() {
		select {
		case <-ctx.Done():
			return nil
		case <-e.kick:
		}
	}
	e.playRing.Write(e.prime)
	e.stopping.Store(false)
	if err := e.dev.dev.Start(); err != nil {
		return fmt.Errorf("%w: restart %s device: %w", ErrDeviceLost, e.info.Backend, err)
	}
	e.running.Store(true)
	e.paused.Store(false)
	e.log.Debug("audio device resumed")
	return nil
}

// process turns one captured frame into one encoded frame and one played
// frame. This is where echo cancellation would go: capture and the frame
// played share the device clock (see the package documentation).
func (e *Engine) process() {
	e.frames.Add(1)
	// Microphone.
	mic := e.capture
	if e.cfg.Source != nil {
		e.cfg.Source.Read(mic)
	}
	if e.echo != nil {
		_ = e.echo.Process(mic, e.refs[e.refPos], mic) // frames of the right size cannot fail
	}
	if e.muted.Load() {
		clear(mic)
	}
	if e.cfg.CaptureSink != nil {
		e.cfg.CaptureSink.Write(mic)
	}
	if fn := e.onCapture.Load(); fn != nil {
		(*fn)(mic)
	}
	if e.micMeter.Add(mic) {
		e.micLevel.Store(int32(e.micMeter.Level()))
	}
	if fn := e.onEncoded.Load(); fn != nil {
		n, err := e.enc.Encode(mic, e.pktBuf)
		if err != nil {
			e.encodeErrs.Add(1)
		} else {
			(*fn)(Frame{Opus: append([]byte(nil), e.pktBuf[:n]...), Duration: FrameDuration, Timestamp: e.ts})
		}
	}
	e.ts += FrameSamples

	// Speaker.
	clear(e.acc)
	e.mu.Lock()
	e.active = e.active[:0]
	kept := e.parties[:0]
	for _, p := range e.parties {
		if p.closed.Load() {
			p.free()
			continue
		}
		kept = append(kept, p)
		e.active = append(e.active, p)
	}
	clear(e.parties[len(kept):])
	e.parties = kept
	e.mu.Unlock()
	for _, p := range e.active {
		p.render(e.scratch)
		for i, s := range e.scratch {
			e.acc[i] += int32(s)
		}
	}
	if t := e.tone.Load(); t != e.toneSeen {
		e.toneSeen = t
		if Tone(t&0xff) == ToneUnknown {
			e.gen.stop()
		} else {
			e.gen.start(Tone(t & 0xff))
		}
	}
	e.gen.add(e.acc)
	e.mixClip(e.acc)
	e.lim.apply(e.acc, e.out, float64(e.volume.Load())/100)
	e.playRing.Write(e.out)
	if e.echo != nil {
		copy(e.refs[e.refPos], e.out)
		e.refPos = (e.refPos + 1) % len(e.refs)
	}
	if e.cfg.Sink != nil {
		e.cfg.Sink.Write(e.out)
	}

	e.ticks++
	if e.ticks%(levelWindow/FrameSamples) == 0 {
		if fn := e.onLevels.Load(); fn != nil {
			lv := Levels{Mic: e.MicLevel(), Parties: make(map[string]int, len(e.active))}
			for _, p := range e.active {
				lv.Parties[p.id] = p.Level()
			}
			(*fn)(lv)
		}
	}
}
