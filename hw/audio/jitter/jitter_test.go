package jitter

import (
	"fmt"
	"testing"
)

// pkt builds a payload that names its sequence number.
func pkt(seq uint16) []byte { return []byte(fmt.Sprintf("p%d", seq)) }

// popAll pops n times and renders each result as "seq", "lost seq" or "-".
func popAll(b *Buffer, n int) []string {
	buf := make([]byte, 1500)
	var got []string
	for i := 0; i < n; i++ {
		o := b.Pop(buf)
		switch o.Kind {
		case KindPacket:
			if string(o.Payload) != string(pkt(o.Seq)) {
				got = append(got, "corrupt")
				continue
			}
			got = append(got, fmt.Sprint(o.Seq))
		case KindLost:
			got = append(got, fmt.Sprintf("lost%d", o.Seq))
		default:
			got = append(got, "-")
		}
	}
	return got
}

func eq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pops\n got  %v\n want %v", got, want)
	}
}

func TestReorderedPacketsPlayInOrder(t *testing.T) {
	b := New(Config{Target: 3})
	for _, s := range []uint16{101, 100, 103, 102, 105, 104} {
		b.Push(s, uint32(s)*960, pkt(s))
	}
	eq(t, popAll(b, 7), "100", "101", "102", "103", "104", "105", "lost106")
}

func TestWaitsForTargetBeforePlayout(t *testing.T) {
	b := New(Config{Target: 3})
	b.Push(1, 0, pkt(1))
	b.Push(2, 960, pkt(2))
	eq(t, popAll(b, 1), "-")
	b.Push(3, 1920, pkt(3))
	eq(t, popAll(b, 3), "1", "2", "3")
}

func TestStartsAfterWaitingWithFewPackets(t *testing.T) {
	b := New(Config{Target: 3})
	b.Push(7, 0, pkt(7))
	// Waits 2*Target pops at most, then plays what it has.
	eq(t, popAll(b, 6), "-", "-", "-", "-", "-", "7")
}

func TestGapIsReportedWithFollowingPacketForFEC(t *testing.T) {
	b := New(Config{Target: 2})
	for _, s := range []uint16{10, 11, 13, 14} {
		b.Push(s, uint32(s)*960, pkt(s))
	}
	buf := make([]byte, 100)
	for _, want := range []string{"10", "11"} {
		if o := b.Pop(buf); o.Kind != KindPacket || fmt.Sprint(o.Seq) != want {
			t.Fatalf("pop = %v %d, want packet %s", o.Kind, o.Seq, want)
		}
	}
	o := b.Pop(buf)
	if o.Kind != KindLost || o.Seq != 12 || string(o.Payload) != "p13" {
		t.Fatalf("pop = %v seq %d payload %q, want lost 12 carrying p13", o.Kind, o.Seq, o.Payload)
	}
	eq(t, popAll(b, 2), "13", "14")
	if st := b.Stats(); st.Lost != 1 || st.Played != 4 {
		t.Fatalf("stats %+v, want 1 lost, 4 played", st)
	}
}

func TestLatePacketsAreDropped(t *testing.T) {
	b := New(Config{Target: 2})
	b.Push(1, 0, pkt(1))
	b.Push(3, 0, pkt(3))
	eq(t, popAll(b, 2), "1", "lost2")
	b.Push(2, 0, pkt(2)) // after its turn
	b.Push(1, 0, pkt(1)) // long gone
	eq(t, popAll(b, 1), "3")
	if st := b.Stats(); st.Late != 2 {
		t.Fatalf("late = %d, want 2", st.Late)
	}
}

func TestDuplicatesAreDropped(t *testing.T) {
	b := New(Config{Target: 2})
	b.Push(5, 0, pkt(5))
	b.Push(5, 0, pkt(5))
	b.Push(6, 0, pkt(6))
	eq(t, popAll(b, 3), "5", "6", "lost7")
	if st := b.Stats(); st.Duplicate != 1 {
		t.Fatalf("duplicates = %d, want 1", st.Duplicate)
	}
}

func TestSequenceWraparound(t *testing.T) {
	b := New(Config{Target: 2})
	for _, s := range []uint16{65534, 0, 65535, 1} {
		b.Push(s, 0, pkt(s))
	}
	eq(t, popAll(b, 4), "65534", "65535", "0", "1")
}

func TestStaysBounded(t *testing.T) {
	b := New(Config{Target: 3, Capacity: 8})
	// A burst of 100 packets without any pop keeps only the newest 8.
	for s := uint16(0); s < 100; s++ {
		b.Push(s, 0, pkt(s))
		if b.Len() > 8 {
			t.Fatalf("holds %d packets, capacity 8", b.Len())
		}
	}
	got := popAll(b, 8)
	eq(t, got, "92", "93", "94", "95", "96", "97", "98", "99")
	if st := b.Stats(); st.Dropped != 92 {
		t.Fatalf("dropped = %d, want 92", st.Dropped)
	}
}

func TestExcessLatencyIsTrimmed(t *testing.T) {
	b := New(Config{Target: 2, Capacity: 16})
	// Build up 8 packets of backlog, then feed one per pop.
	seq := uint16(0)
	for ; seq < 8; seq++ {
		b.Push(seq, 0, pkt(seq))
	}
	buf := make([]byte, 100)
	for i := 0; i < 200; i++ {
		b.Push(seq, 0, pkt(seq))
		seq++
		if o := b.Pop(buf); o.Kind != KindPacket {
			t.Fatalf("pop %d: %v", i, o.Kind)
		}
	}
	if depth := b.Len(); depth > 2+3 {
		t.Fatalf("backlog %d packets after trimming, want <= %d", depth, 5)
	}
	if st := b.Stats(); st.Trimmed == 0 || st.Lost != 0 {
		t.Fatalf("stats %+v: want some trimmed, none lost", st)
	}
}

func TestRunsDryThenRebuffers(t *testing.T) {
	b := New(Config{Target: 2, MaxConceal: 3})
	b.Push(1, 0, pkt(1))
	b.Push(2, 0, pkt(2))
	eq(t, popAll(b, 7), "1", "2", "lost3", "lost3", "lost3", "-", "-")
	// A packet delayed but still in order plays after buffering again.
	b.Push(3, 0, pkt(3))
	b.Push(4, 0, pkt(4))
	eq(t, popAll(b, 2), "3", "4")
}

func TestDryConcealmentDoesNotSkipADelayedPacket(t *testing.T) {
	b := New(Config{Target: 2, MaxConceal: 5})
	b.Push(1, 0, pkt(1))
	b.Push(2, 0, pkt(2))
	eq(t, popAll(b, 3), "1", "2", "lost3")
	b.Push(3, 0, pkt(3))
	eq(t, popAll(b, 1), "3")
}

func TestSenderRestartResets(t *testing.T) {
	b := New(Config{Target: 2})
	b.Push(100, 0, pkt(100))
	b.Push(101, 0, pkt(101))
	eq(t, popAll(b, 2), "100", "101")
	b.Push(30000, 0, pkt(30000))
	b.Push(30001, 0, pkt(30001))
	eq(t, popAll(b, 2), "30000", "30001")
	if st := b.Stats(); st.Resets != 1 {
		t.Fatalf("resets = %d, want 1", st.Resets)
	}
}

func TestOversizeAndEmptyPayloads(t *testing.T) {
	b := New(Config{Target: 1, MaxPayload: 4})
	b.Push(1, 0, []byte("toolong"))
	b.Push(2, 0, nil)
	eq(t, popAll(b, 1), "-")
	if st := b.Stats(); st.Oversize != 1 || st.Pushed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func FuzzBuffer(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0, 5, 4, 0, 0, 200, 9})
	f.Add([]byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := New(Config{Target: 3, Capacity: 8})
		buf := make([]byte, 1500)
		seq := uint16(0)
		var last uint16
		played, resets := false, 0
		for _, op := range ops {
			if op == 0 {
				o := b.Pop(buf)
				if o.Kind != KindPacket {
					continue
				}
				if string(o.Payload) != string(pkt(o.Seq)) {
					t.Fatalf("payload %q for seq %d", o.Payload, o.Seq)
				}
				r := b.Stats().Resets
				if played && r == resets && int16(o.Seq-last) <= 0 {
					t.Fatalf("played %d after %d", o.Seq, last)
				}
				last, played, resets = o.Seq, true, r
				continue
			}
			seq += uint16(int8(op))
			b.Push(seq, 0, pkt(seq))
			if b.Len() > 8 {
				t.Fatalf("holds %d > capacity", b.Len())
			}
		}
	})
}
