package gpio

import (
	"testing"
	"testing/synctest"
	"time"
)

// A release lost between a long press and the next press (edges coalesced
// by a slow kernel report the second press as a repeated active level)
// must not leave the button stuck in the finished gesture.
func TestButtonLostReleaseAfterLongPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []ButtonEvent
		b := newButton("call", time.Second, func(e ButtonEvent) { got = append(got, e) })
		defer b.stop()
		b.edge(Edge{Active: true, Time: time.Now()})
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		if len(got) != 1 || got[0].Gesture != GestureLongPress {
			t.Fatalf("got %+v, want one long press", got)
		}
		// The release is lost; the next press and release arrive.
		b.edge(Edge{Active: true, Time: time.Now()})
		time.Sleep(50 * time.Millisecond)
		b.edge(Edge{Active: false, Time: time.Now()})
		if len(got) != 2 || got[1].Gesture != GesturePress || got[1].Held != 50*time.Millisecond {
			t.Fatalf("got %+v, want the long press then a 50ms press", got)
		}
		// A repeated press within a short hold stays one hold.
		b.edge(Edge{Active: true, Time: time.Now()})
		b.edge(Edge{Active: true, Time: time.Now()})
		time.Sleep(20 * time.Millisecond)
		b.edge(Edge{Active: false, Time: time.Now()})
		if len(got) != 3 || got[2].Held != 20*time.Millisecond {
			t.Fatalf("got %+v, want a third press held 20ms", got)
		}
	})
}
