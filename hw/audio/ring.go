package audio

import "sync/atomic"

// ring is a single-producer single-consumer queue of samples. One goroutine
// (or C thread) writes, one reads; neither blocks nor allocates.
type ring struct {
	buf  []int16
	mask uint32
	r, w atomic.Uint32 // free-running sample counts; the device callback's C code uses them too
}

// newRing returns a ring holding at least n samples.
func newRing(n int) *ring {
	size := 1
	for size < n {
		size <<= 1
	}
	return &ring{buf: make([]int16, size), mask: uint32(size - 1)}
}

// Len returns the number of samples queued.
func (q *ring) Len() int { return int(q.w.Load() - q.r.Load()) }

// Write queues as much of p as fits and returns how many samples it took.
func (q *ring) Write(p []int16) int {
	w, r := q.w.Load(), q.r.Load()
	n := min(len(p), len(q.buf)-int(w-r))
	start := int(w & q.mask)
	c := copy(q.buf[start:], p[:n])
	copy(q.buf, p[c:n])
	q.w.Store(w + uint32(n))
	return n
}

// Read dequeues up to len(p) samples into p and returns how many it read.
func (q *ring) Read(p []int16) int {
	r, w := q.r.Load(), q.w.Load()
	n := min(len(p), int(w-r))
	start := int(r & q.mask)
	c := copy(p[:n], q.buf[start:])
	copy(p[c:n], q.buf)
	q.r.Store(r + uint32(n))
	return n
}

// discard drops every queued sample. Only the reader may call it, or the
// writer while the reader is known to be stopped.
func (q *ring) discard() { q.r.Store(q.w.Load()) }
