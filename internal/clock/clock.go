// Package clock is the one clock interface of intercomd: the time now,
// timers and tickers. Packages that wait take a Clock so that tests can
// drive time with the fake in clock/clocktest instead of sleeping; the
// daemon passes Real().
//
// A Clock is safe for concurrent use. Timer callbacks run on a goroutine of
// the clock's choosing (their own for Real, the caller of Advance for the
// fake) and must not block.
package clock

import "time"

// Clock tells the time and starts timers.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, unless the timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker delivers the time on C() every d (dropping ticks a slow
	// reader misses, as time.Ticker does).
	NewTicker(d time.Duration) Ticker
}

// Timer is a timer started by AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether it did.
	Stop() bool
	// Reset rearms the timer to fire after d; it reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

// Ticker is a ticker started by NewTicker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Real returns the system clock.
func Real() Clock { return system{} }

// Or returns c, or the system clock when c is nil: for options that
// default to real time.
func Or(c Clock) Clock {
	if c == nil {
		return system{}
	}
	return c
}

// Since is the time elapsed on c since t.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (system) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.Ticker.C }
