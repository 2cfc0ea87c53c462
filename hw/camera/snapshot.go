package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
)

// ErrNoFrame: no frame came within the wait (the camera is not capturing:
// it runs only while a call wants video).
var ErrNoFrame = errors.New("camera: no frame to take a snapshot of")

// Snapshot returns the next captured frame as a JPEG (quality 80): the
// picture a notification shows of who is at the door. It copies one frame
// on the encoder's goroutine and encodes it on the caller's, with the
// standard library (no second video encoder). It waits until ctx is done
// for a frame; ErrNoFrame when none came.
func (p *Pipeline) Snapshot(ctx context.Context) ([]byte, error) {
	want := make(chan image.Image, 1)
	p.snapMu.Lock()
	p.snapWant = append(p.snapWant, want)
	p.snapMu.Unlock()
	var img image.Image
	select {
	case img = <-want:
	case <-ctx.Done():
		p.snapMu.Lock()
		for i, w := range p.snapWant {
			if w == want {
				p.snapWant = append(p.snapWant[:i], p.snapWant[i+1:]...)
				break
			}
		}
		p.snapMu.Unlock()
		return nil, ErrNoFrame
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("camera: snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// snap hands a copy of frame to the Snapshot calls waiting, on the encoder's
// goroutine, before the frame's buffer is released.
func (p *Pipeline) snap(frame image.Image) {
	p.snapMu.Lock()
	waiting := p.snapWant
	p.snapWant = nil
	p.snapMu.Unlock()
	if len(waiting) == 0 {
		return
	}
	cp := copyFrame(frame)
	for _, w := range waiting {
		w <- cp
	}
}

// copyFrame returns a copy of frame that outlives its buffer: YCbCr planes
// as they are, anything else as RGBA.
func copyFrame(frame image.Image) image.Image {
	if y, ok := frame.(*image.YCbCr); ok {
		c := *y
		c.Y, c.Cb, c.Cr = append([]byte(nil), y.Y...), append([]byte(nil), y.Cb...), append([]byte(nil), y.Cr...)
		return &c
	}
	rgba := image.NewRGBA(frame.Bounds())
	draw.Draw(rgba, rgba.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return rgba
}

func frameSize(w, h int) string { return fmt.Sprintf("%dx%d", w, h) }
