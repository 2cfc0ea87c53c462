package gpio

import (
	"fmt"
	"sync"
	"time"
)

// Gesture is what a user did with a button.
type Gesture int

// Gestures.
const (
	GestureUnknown Gesture = iota
	// GesturePress is a press released before the long-press threshold,
	// reported on release.
	GesturePress
	// GestureLongPress is a press held for the threshold, reported when the
	// threshold is reached, while the button is still held.
	GestureLongPress
)

// String returns "press", "long-press" or "unknown".
func (g Gesture) String() string {
	switch g {
	case GestureUnknown:
		return "unknown"
	case GesturePress:
		return "press"
	case GestureLongPress:
		return "long-press"
	}
	return fmt.Sprintf("Gesture(%d)", int(g))
}

// ButtonEvent is one gesture on one button.
type ButtonEvent struct {
	// Button is the configured name of the button.
	Button  string
	Gesture Gesture
	// Time is the timestamp of the deciding edge: the release for a press,
	// the press for a long press.
	Time time.Time
	// Held is how long the button was held: the whole hold for a press, the
	// threshold for a long press.
	Held time.Duration
}

// button turns the debounced edges of one line into gestures. It never
// blocks: emit must not block either.
type button struct {
	name      string
	longPress time.Duration
	emit      func(ButtonEvent)

	mu        sync.Mutex
	pressed   bool
	pressedAt time.Time
	longFired bool
	timer     *time.Timer
	gen       uint64
	stopped   bool
}

func newButton(name string, longPress time.Duration, emit func(ButtonEvent)) *button {
	return &button{name: name, longPress: longPress, emit: emit}
}

// edge is the button's EdgeHandler.
func (b *button) edge(e Edge) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	if e.Active == b.pressed {
		// A repeated level: a release seen first after start-up while held,
		// or edges coalesced by the kernel. A press after a long press
		// means the release between them was lost: it starts a new hold,
		// so the button is not stuck in the finished gesture.
		if !(e.Active && b.longFired) {
			return
		}
	}
	b.pressed = e.Active
	b.gen++
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if e.Active {
		b.pressedAt = e.Time
		b.longFired = false
		gen := b.gen
		wait := b.longPress - time.Since(e.Time)
		b.timer = time.AfterFunc(max(wait, 0), func() { b.fireLong(gen) })
		return
	}
	if b.longFired {
		return
	}
	held := e.Time.Sub(b.pressedAt)
	if held >= b.longPress {
		// The release was handled before the timer fired: the hold still
		// counts as long.
		b.longFired = true
		b.emit(ButtonEvent{Button: b.name, Gesture: GestureLongPress, Time: b.pressedAt, Held: b.longPress})
		return
	}
	b.emit(ButtonEvent{Button: b.name, Gesture: GesturePress, Time: e.Time, Held: held})
}

func (b *button) fireLong(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped || gen != b.gen || !b.pressed || b.longFired {
		return
	}
	b.longFired = true
	b.emit(ButtonEvent{Button: b.name, Gesture: GestureLongPress, Time: b.pressedAt, Held: b.longPress})
}

// stop ends gesture detection; emit is not called after stop returns.
func (b *button) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
	}
}
