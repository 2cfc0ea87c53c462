// Package clocktest is a fake clock.Clock whose time moves only when a test
// says so: Advance fires, in deadline order and on the caller's goroutine,
// every timer and ticker that falls due.
package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/intercomd/intercomd/internal/clock"
)

// Clock is a fake clock. The zero value is not usable; use New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	seq     int
	waiters []*waiter
	changed chan struct{} // closed and replaced when a waiter is added
}

type waiter struct {
	at     time.Time
	seq    int
	fn     func()  // timer
	ticker *ticker // or ticker
	every  time.Duration
	active bool
}

// New returns a fake clock set to start (a fixed date when zero).
func New(start time.Time) *Clock {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	}
	return &Clock{now: start, changed: make(chan struct{})}
}

var _ clock.Clock = (*Clock)(nil)

// Now implements clock.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements clock.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	w := &waiter{fn: f}
	c.arm(w, d)
	return &timer{c: c, w: w}
}

// NewTicker implements clock.Clock.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive interval for NewTicker")
	}
	t := &ticker{c: c, ch: make(chan time.Time, 1)}
	t.w = &waiter{ticker: t, every: d}
	c.arm(t.w, d)
	return t
}

func (c *Clock) arm(w *waiter, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := w.active
	if !w.active {
		c.waiters = append(c.waiters, w)
	}
	c.seq++
	w.at, w.seq, w.active = c.now.Add(max(d, 0)), c.seq, true
	close(c.changed)
	c.changed = make(chan struct{})
	return was
}

func (c *Clock) disarm(w *waiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := w.active
	w.active = false
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			break
		}
	}
	return was
}

// Advance moves the time on by d, firing what falls due in order; a timer
// that a callback arms within the span fires too.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.waiters, func(i, j int) bool {
			a, b := c.waiters[i], c.waiters[j]
			if !a.at.Equal(b.at) {
				return a.at.Before(b.at)
			}
			return a.seq < b.seq
		})
		if len(c.waiters) == 0 || c.waiters[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		w := c.waiters[0]
		if w.at.After(c.now) {
			c.now = w.at
		}
		now := c.now
		if w.ticker != nil {
			c.seq++
			w.at, w.seq = now.Add(w.every), c.seq
		} else {
			w.active = false
			c.waiters = c.waiters[1:]
		}
		c.mu.Unlock()
		if w.ticker != nil {
			select {
			case w.ticker.ch <- now:
			default:
			}
		} else {
			w.fn()
		}
	}
}

// Pending is the number of armed timers and tickers.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// WaitFor blocks until at least n timers and tickers are armed, so a test
// can advance the time only once the code under test waits on it. It
// reports false if that did not happen within real time limit.
func (c *Clock) WaitFor(n int, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, ch := len(c.waiters) >= n, c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

type timer struct {
	c *Clock
	w *waiter
}

func (t *timer) Stop() bool                 { return t.c.disarm(t.w) }
func (t *timer) Reset(d time.Duration) bool { return t.c.arm(t.w, d) }

type ticker struct {
	c  *Clock
	w  *waiter
	ch chan time.Time
}

func (t *ticker) C() <-chan time.Time { return t.ch }
func (t *ticker) Stop()               { t.c.disarm(t.w) }
func (t *ticker) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.w.every = d
	t.c.mu.Unlock()
	t.c.arm(t.w, d)
}
