package gpio

import (
	"sync"
	"time"
)

// Debouncer is a software debounce decorator for an [EdgeHandler], used when
// the kernel cannot debounce a line. Like the kernel's debounce, it reports a
// level only once the line has held it for the whole period, with the time
// of the raw edge that set it; bursts of bounces shorter than the period
// report nothing, and a burst that ends at the level already reported
// reports nothing either. The cost is one period of latency per edge.
type Debouncer struct {
	period time.Duration
	next   EdgeHandler

	mu       sync.Mutex
	known    bool // whether reported is meaningful
	reported bool // last level handed to next
	pending  Edge // last raw edge
	timer    *time.Timer
	gen      uint64 // bumped by every raw edge; stale timers compare it
	stopped  bool
}

// NewDebouncer returns a decorator that passes edges stable for period on to
// next. Edges are delivered to next from a timer goroutine, serially. The
// first settled level is always delivered, even if it is the level the line
// had when edge detection started.
func NewDebouncer(period time.Duration, next EdgeHandler) *Debouncer {
	return &Debouncer{period: period, next: next}
}

// Edge is the [EdgeHandler] to give to the line. It never blocks for long.
func (d *Debouncer) Edge(e Edge) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	// The previous edge held its level for the whole period, by the edges'
	// own timestamps, even if its timer has not fired yet (a loaded
	// machine runs timers late): deliver it before this one replaces it,
	// or a press held for longer than the period would be lost.
	if d.gen > 0 && e.Time.Sub(d.pending.Time) >= d.period {
		d.deliverLocked()
	}
	d.pending = e
	d.gen++
	gen := d.gen
	if d.timer != nil {
		d.timer.Stop()
	}
	// The remaining wait is measured from the edge's own timestamp, so a
	// handler running late does not lengthen the period.
	wait := d.period - time.Since(e.Time)
	d.timer = time.AfterFunc(max(wait, 0), func() { d.settle(gen) })
}

// settle delivers the pending edge if no newer raw edge arrived since.
// Delivery is serialised by holding mu; next must not call back into d.
func (d *Debouncer) settle(gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || gen != d.gen {
		return
	}
	d.deliverLocked()
}

// deliverLocked hands the pending edge to next unless its level is the one
// last reported; mu must be held.
func (d *Debouncer) deliverLocked() {
	if d.known && d.pending.Active == d.reported {
		return
	}
	d.known = true
	d.reported = d.pending.Active
	d.next(d.pending)
}

// Stop discards any pending edge. After Stop returns, next is not called
// again.
func (d *Debouncer) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
}
