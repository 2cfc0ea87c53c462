package audio

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

// TestFeedSignalsWholeFrames drives the C device callback by hand: half a
// frame does not wake the loop, the second half does, once, and the
// samples arrive in order.
func TestFeedSignalsWholeFrames(t *testing.T) {
	capRing, playRing := newRing(SampleRate/2), newRing(SampleRate/2)
	f, err := newFeed(capRing, playRing)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	in := make([]int16, FrameSamples/2)
	out := make([]int16, FrameSamples/2)
	for i := range in {
		in[i] = int16(i)
	}
	f.data(out, in)
	if err := f.wait(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("half a frame woke the loop: %v", err)
	}
	f.data(out, in)
	if err := f.wait(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("a whole frame did not wake the loop: %v", err)
	}
	if err := f.wait(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("one frame woke the loop twice: %v", err)
	}
	got := make([]int16, FrameSamples)
	if n := capRing.Read(got); n != FrameSamples || !slices.Equal(got[:len(in)], in) || !slices.Equal(got[len(in):], in) {
		t.Fatalf("captured %d samples, %v...", n, got[:4])
	}
	// The next frame wakes it again: the signal was re-armed by wait.
	f.data(out, in)
	f.data(out, in)
	if err := f.wait(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("the second frame did not wake the loop: %v", err)
	}
}

// TestFeedCountsGlitches: a speaker queue that runs dry is an underrun
// (the rest of the buffer is silence), a capture queue that is full an
// overrun.
func TestFeedCountsGlitches(t *testing.T) {
	capRing, playRing := newRing(1024), newRing(1024)
	f, err := newFeed(capRing, playRing)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	playRing.Write([]int16{1, 2, 3})
	out := []int16{9, 9, 9, 9, 9}
	f.data(out, nil)
	if !slices.Equal(out, []int16{1, 2, 3, 0, 0}) {
		t.Fatalf("played %v, want the queue then silence", out)
	}
	f.data(nil, make([]int16, 1000))
	f.data(nil, make([]int16, 100))
	if o, u := f.counts(); o != 1 || u != 1 {
		t.Fatalf("overruns %d, underruns %d; want 1 and 1", o, u)
	}
	if capRing.Len() != 1024 {
		t.Fatalf("capture queue holds %d samples, want it full (1024)", capRing.Len())
	}
}
