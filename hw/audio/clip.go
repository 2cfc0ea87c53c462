package audio

import (
	"context"
	"errors"
	"sync"
)

// ErrCut: Play's clip was replaced by another before it ended.
var ErrCut = errors.New("audio: clip cut off by another")

// clip is PCM the engine plays once through the speaker (Play).
type clip struct {
	pcm  []int16
	pos  int // next sample; the processing goroutine's
	done chan struct{}
	once sync.Once
	cut  bool // set before done closes when another clip replaced it
}

func (c *clip) finish(cut bool) {
	c.once.Do(func() {
		c.cut = cut
		close(c.done)
	})
}

// Play plays pcm (SampleRate, mono) once through the speaker, mixed with
// the parties and the tone at the speaker volume, and returns once its last
// sample is queued for the speaker (the speaker queue's margin later it has
// been heard). It returns early, the clip silenced from the next frame on,
// with ctx's error when ctx ends, ErrCut when another Play replaces it, and
// ErrClosed when the engine stops. A paused engine resumes for it. pcm must
// not change until Play returns.
func (e *Engine) Play(ctx context.Context, pcm []int16) error {
	c := &clip{pcm: pcm, done: make(chan struct{})}
	if old := e.clip.Swap(c); old != nil {
		old.finish(true)
	}
	e.wakeUp()
	defer func() {
		if e.clip.CompareAndSwap(c, nil) {
			c.finish(false)
		}
	}()
	select {
	case <-c.done:
		if c.cut {
			return ErrCut
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrClosed
	}
}

// OnCapture sets the function receiving each captured microphone frame,
// FrameSamples of SampleRate mono, as it is encoded for calls (after echo
// cancellation and muting), or nil to stop. It is a second consumer beside
// OnEncoded, which it leaves alone, and keeps the device running. It runs
// on the processing goroutine every 20 ms, must not block and must not
// retain p.
func (e *Engine) OnCapture(fn func(p []int16)) {
	if fn == nil {
		e.onCapture.Store(nil)
		return
	}
	e.onCapture.Store(&fn)
	e.wakeUp()
}

// mixClip adds the playing clip's next samples to acc; the processing
// goroutine's.
func (e *Engine) mixClip(acc []int32) {
	c := e.clip.Load()
	if c == nil {
		return
	}
	for i := range acc {
		if c.pos >= len(c.pcm) {
			break
		}
		acc[i] += int32(c.pcm[c.pos])
		c.pos++
	}
	if c.pos >= len(c.pcm) && e.clip.CompareAndSwap(c, nil) {
		c.finish(false)
	}
}
