package clocktest

import (
	"strings"
	"testing"
	"time"
)

func TestAdvanceFiresInOrder(t *testing.T) {
	c := New(time.Time{})
	start := c.Now()
	var got []string
	c.AfterFunc(2*time.Second, func() { got = append(got, "b") })
	c.AfterFunc(time.Second, func() {
		got = append(got, "a")
		c.AfterFunc(500*time.Millisecond, func() { got = append(got, "a2") })
	})
	stopped := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, "never") })
	if !stopped.Stop() {
		t.Fatal("Stop of an armed timer reported false")
	}
	c.Advance(1999 * time.Millisecond)
	if want := "a a2"; strings.Join(got, " ") != want {
		t.Fatalf("after 1.999 s fired %q, want %q", strings.Join(got, " "), want)
	}
	c.Advance(time.Millisecond)
	if want := "a a2 b"; strings.Join(got, " ") != want {
		t.Fatalf("after 2 s fired %q, want %q", strings.Join(got, " "), want)
	}
	if d := c.Now().Sub(start); d != 2*time.Second {
		t.Fatalf("now moved %s, want 2s", d)
	}
	if c.Pending() != 0 {
		t.Fatalf("%d timers still armed", c.Pending())
	}
}

func TestTickerAndReset(t *testing.T) {
	c := New(time.Time{})
	tk := c.NewTicker(time.Second)
	defer tk.Stop()
	c.Advance(3 * time.Second) // a slow reader misses ticks
	select {
	case <-tk.C():
	default:
		t.Fatal("no tick")
	}
	select {
	case <-tk.C():
		t.Fatal("a second tick was buffered")
	default:
	}
	n := 0
	tm := c.AfterFunc(time.Second, func() { n++ })
	c.Advance(900 * time.Millisecond)
	if tm.Reset(time.Second) != true {
		t.Fatal("Reset of an armed timer reported false")
	}
	c.Advance(900 * time.Millisecond)
	if n != 0 {
		t.Fatal("fired before the reset deadline")
	}
	c.Advance(100 * time.Millisecond)
	if n != 1 {
		t.Fatalf("fired %d times, want 1", n)
	}
}

func TestWaitFor(t *testing.T) {
	c := New(time.Time{})
	go func() { c.AfterFunc(time.Second, func() {}) }()
	if !c.WaitFor(1, 5*time.Second) {
		t.Fatal("WaitFor never saw the timer")
	}
	if c.WaitFor(2, 10*time.Millisecond) {
		t.Fatal("WaitFor saw a timer that does not exist")
	}
}
