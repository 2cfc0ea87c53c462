package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/intercomd/intercomd/config"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/homeassistant"
	"github.com/intercomd/intercomd/visitorlog"
	"github.com/intercomd/intercomd/voicemsg"
)

// ringSnapshotWait bounds the wait for the camera's first frame after a
// ring (the camera starts with the call).
const ringSnapshotWait = 5 * time.Second

// visitors is the visitor log and its entry of the ring under way.
type visitors struct {
	log  *visitorlog.Log
	ring atomic.Pointer[string] // set from the ring to its end
	busy sync.WaitGroup         // writes under way off the calling loop

	// message configures the voice message; nil when it is off.
	message *voicemsg.Config
	// audio is the device's audio engine, for messages; set before the
	// rings are watched.
	audio voicemsg.Audio
	// stopMessage stops the recording under way, and recorded is closed
	// once it has ended; watchRings' goroutine's.
	stopMessage context.CancelFunc
	recorded    chan struct{}
}

// wait waits for the writes under way, at most until ctx is done: a stop
// right after a ring keeps its picture and outcome.
func (v *visitors) wait(ctx context.Context) {
	if v == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		v.busy.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// openVisitors opens the visitor log in the state directory's visitors/
// when visitor_log.enabled. A log that cannot be opened is a warning: the
// door works without it. A greeting of visitor_log.voice_message that
// cannot be read is an error.
func (d *daemon) openVisitors(stateDir string) error {
	v := d.cfg.VisitorLog
	if !v.Enabled {
		return nil
	}
	msg, err := voiceMessage(d.cfg)
	if err != nil {
		return err
	}
	dir := filepath.Join(stateDir, "visitors")
	l, err := visitorlog.Open(visitorlog.Options{MaxEntries: v.MaxEntries, MaxBytes: v.MaxBytes, Disk: visitorlog.Dir(dir)})
	if l == nil {
		d.log.Warn("visitor log off: it cannot be opened", "dir", dir, "err", err)
		return nil
	}
	if err != nil {
		d.log.Warn("visitor log", "dir", dir, "err", err)
	}
	d.visitors = &visitors{log: l, message: msg}
	d.log.Info("visitor log", "dir", dir, "entries", len(l.List()), "voice_message", msg != nil)
	return nil
}

// voiceMessage is the recording of visitor_log.voice_message, its
// greeting read; nil when it is off. check-config reads it too.
func voiceMessage(cfg *config.Config) (*voicemsg.Config, error) {
	m := cfg.VisitorLog.VoiceMessage
	if !m.Enabled {
		return nil, nil
	}
	c := &voicemsg.Config{MaxDuration: m.MaxDuration, Silence: m.Silence, Complexity: cfg.Audio.MicComplexity}
	if m.Greeting != "" {
		b, err := os.ReadFile(m.Greeting)
		if err == nil {
			c.Greeting, err = voicemsg.ParseWAV(b)
		}
		if err != nil {
			return nil, fmt.Errorf("visitor_log.voice_message.greeting: %s: %w", m.Greeting, err)
		}
	}
	return c, nil
}

// useAudio gives the visitor log the device's audio engine for messages.
func (v *visitors) useAudio(a voicemsg.Audio) {
	if v != nil && a != nil {
		v.audio = a
	}
}

// leavesMessage reports whether a ring that ended unanswered for reason
// asks the visitor for a message: nobody answered in time, or nobody could
// be reached. Not when the door hung up (the visitor went), the media
// failed, or a resident declined (the outcome is declined then).
func leavesMessage(r calling.Reason) bool {
	return r == calling.ReasonTimeout || r == calling.ReasonOffline || r == calling.ReasonBusy
}

// recordMessage records the visitor's message into entry id off the
// calling loop, when voice messages are on: watchRings' goroutine only.
// stopRecording (any new ring or call) ends it, and what was said is
// kept; a microphone that fails leaves the entry without a message.
func (d *daemon) recordMessage(ctx context.Context, id string) {
	v := d.visitors
	if v == nil || v.message == nil || v.audio == nil || id == "" {
		return
	}
	v.stopRecording()
	rctx, cancel := context.WithCancel(ctx)
	// One recording at a time (the engine's capture has one consumer):
	// this one starts once the one it stopped has ended.
	prev, done := v.recorded, make(chan struct{})
	v.stopMessage, v.recorded = cancel, done
	cfg := *v.message
	cfg.OnRecording = func() { d.log.Info("recording the visitor's voice message", "entry", id, "max", cfg.MaxDuration) }
	d.log.Info("asking the visitor for a voice message", "entry", id)
	v.busy.Go(func() {
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev
		}
		m, err := voicemsg.Record(rctx, v.audio, cfg)
		switch {
		case errors.Is(err, voicemsg.ErrSilent) || errors.Is(err, voicemsg.ErrStopped):
			d.log.Info("no voice message", "entry", id, "why", err)
		case err != nil:
			d.log.Warn("voice message not recorded", "entry", id, "err", err)
		default:
			d.log.Info("voice message", "entry", id, "length", m.Duration, "bytes", len(m.Ogg), "dropped_frames", m.Dropped)
			d.logged(id, func(l *visitorlog.Log) error { return l.Message(id, m.Ogg, m.Duration) })
		}
	})
}

// stopRecording ends the recording under way, if any: watchRings'
// goroutine only.
func (v *visitors) stopRecording() {
	if v != nil && v.stopMessage != nil {
		v.stopMessage()
		v.stopMessage = nil
	}
}

// watchRings follows the device's calls through the shared ring tracker:
// each ring (a call the doorbell places), its snapshot from the camera's
// shared pipeline (no second encoder), who answered or declined and the
// outcome, for Home Assistant and the visitor log; and the call state for
// Home Assistant.
func (d *daemon) watchRings(ctx context.Context, ep *endpoint.Endpoint) {
	if d.ha == nil && d.visitors == nil {
		return
	}
	events, unsubscribe := ep.Subscribe(64)
	go func() {
		defer unsubscribe()
		var (
			tr visitorlog.Tracker
			id string // the visitor log's entry of the ring
		)
		for {
			var ev calling.Event
			select {
			case <-ctx.Done():
				return
			case ev = <-events:
			}
			if sc, ok := ev.(calling.StateChanged); ok {
				d.ha.CallState(sc.To.String())
				if sc.To != calling.Idle {
					d.visitors.stopRecording() // the doorbell and calls win
				}
			}
			ch := tr.Step(ev)
			switch ch.Kind {
			case visitorlog.Rang:
				d.ha.Ring()
				id = d.logRing()
				if d.visitors != nil {
					ring := id
					d.visitors.busy.Go(func() { d.ringSnapshot(ctx, ring) })
				} else {
					go d.ringSnapshot(ctx, id)
				}
			case visitorlog.Answer:
				d.ha.Outcome(homeassistant.EventAnswered)
				d.logged(id, func(l *visitorlog.Log) error { return l.Answered(id, ch.User) })
			case visitorlog.Decline:
				d.logged(id, func(l *visitorlog.Log) error { return l.Declined(id, ch.User) })
			case visitorlog.End:
				switch ch.Outcome {
				case visitorlog.Declined:
					d.ha.Outcome(homeassistant.EventDeclined)
				case visitorlog.Missed:
					d.ha.Outcome(homeassistant.EventMissed)
				}
				if d.visitors != nil {
					d.visitors.ring.Store(nil)
				}
				d.logged(id, func(l *visitorlog.Log) error { return l.End(id, ch.Outcome, ch.Duration) })
				if end, ok := ev.(calling.CallEnd); ok && ch.Outcome == visitorlog.Missed && leavesMessage(end.Reason) {
					d.recordMessage(ctx, id)
				}
				id = ""
			}
		}
	}()
}

// logRing adds the visitor log's entry of a ring and makes it the ring
// under way (for openDoor); "" without a log.
func (d *daemon) logRing() string {
	if d.visitors == nil {
		return ""
	}
	id, err := d.visitors.log.Ring(time.Now())
	if err != nil {
		d.log.Warn("visitor log: the ring is kept in memory only", "err", err)
	}
	d.visitors.ring.Store(&id)
	return id
}

// logged applies a change to the visitor log's entry id, when there is one,
// and logs a failure (the ring goes on regardless).
func (d *daemon) logged(id string, fn func(*visitorlog.Log) error) {
	if d.visitors == nil || id == "" {
		return
	}
	if err := fn(d.visitors.log); err != nil {
		d.log.Warn("visitor log", "entry", id, "err", err)
	}
}

// ringSnapshot takes the picture of a ring from the camera's shared
// pipeline, once, for Home Assistant and the visitor log entry id. Without
// a camera, or without a frame in time, the entry has no picture.
func (d *daemon) ringSnapshot(ctx context.Context, id string) {
	if d.cam == nil || (d.ha == nil && id == "") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ringSnapshotWait)
	defer cancel()
	jpeg, err := d.cam.Snapshot(ctx)
	if err != nil {
		d.log.Warn("ring snapshot", "err", err)
		return
	}
	d.ha.Snapshot(jpeg)
	d.logged(id, func(l *visitorlog.Log) error { return l.Snapshot(id, jpeg) })
}

// openDoor opens the door for by through the station (and its relay
// limits), on the calling loop: a phone's Open door in a call and Home
// Assistant's button. An opening during a ring goes in its visitor log
// entry.
func (d *daemon) openDoor(by string) {
	if !d.st.Door(by) {
		return
	}
	if d.visitors == nil {
		return
	}
	if id := d.visitors.ring.Load(); id != nil {
		at := time.Now()
		d.visitors.busy.Go(func() {
			d.logged(*id, func(l *visitorlog.Log) error { return l.DoorOpened(*id, by, at) })
		})
	}
}
