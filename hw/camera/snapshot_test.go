package camera

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"testing"
	"time"
)

// TestSnapshot: a running pipeline gives a JPEG of its latest frame at the
// source's size; a stopped one says there is no frame.
func TestSnapshot(t *testing.T) {
	p, err := New(Config{Sources: []Source{patternSourceConfig("p", 0)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Snapshot(ctx); !errors.Is(err, ErrNoFrame) {
		t.Fatalf("Snapshot before Start: %v, want ErrNoFrame", err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := p.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	src := patternSourceConfig("p", 0)
	if got := img.Bounds().Size(); got.X != src.Width || got.Y != src.Height {
		t.Errorf("snapshot %v, want %dx%d", got, src.Width, src.Height)
	}
}
