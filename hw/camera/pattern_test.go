package camera

import (
	"bytes"
	"errors"
	"image"
	"image/draw"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPatternStampRoundTrip(t *testing.T) {
	for _, size := range [][2]int{{640, 480}, {1280, 720}, {320, 240}, {160, 120}} {
		src := Source{Device: TestPatternDevice, Width: size[0], Height: size[1], FrameRate: 1000, PatternSeed: 0xBEEF}
		ps, err := newPatternSource(src)
		if err != nil {
			t.Fatalf("%v: %v", size, err)
		}
		var prev []byte
		for i := range 3 {
			before := time.Now()
			img, release, err := ps.Read()
			if err != nil {
				t.Fatal(err)
			}
			s, ok := DecodePattern(img)
			if !ok {
				t.Fatalf("%v frame %d: no bar code", size, i)
			}
			if s.Frame != uint32(i) || s.Seed != 0xBEEF || s.Time.Before(before.Add(-time.Millisecond)) || time.Since(s.Time) > time.Second {
				t.Errorf("%v frame %d: stamp %+v", size, i, s)
			}
			if ts, ok := PatternTimestamp(img); !ok || !ts.Equal(s.Time) {
				t.Errorf("PatternTimestamp = %v, %v", ts, ok)
			}
			y := img.(*image.YCbCr).Y
			codeH := patternCodeRows(size[0]) * CellSize(size[0]) * size[0]
			if prev != nil && bytes.Equal(prev[codeH:], y[codeH:]) {
				t.Errorf("%v frame %d: picture did not move", size, i)
			}
			prev = append(prev[:0], y...)
			release()
		}
		// Any image type works.
		img, _, _ := ps.Read()
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
		if s, ok := DecodePattern(rgba); !ok || s.Frame != 3 {
			t.Errorf("%v: RGBA copy decodes to %+v, %v", size, s, ok)
		}
		// A damaged code is rejected: flip one cell.
		ycc := img.(*image.YCbCr)
		cell := CellSize(size[0])
		for y := 0; y < cell; y++ {
			for x := 3 * cell; x < 4*cell; x++ {
				ycc.Y[y*ycc.YStride+x] ^= 0xff
			}
		}
		if _, ok := DecodePattern(ycc); ok {
			t.Errorf("%v: damaged bar code accepted", size)
		}
		_ = ps.close()
	}
	if _, ok := DecodePattern(image.NewGray(image.Rect(0, 0, 640, 480))); ok {
		t.Error("a black picture decodes as a pattern")
	}
	if _, ok := DecodePattern(image.NewGray(image.Rect(0, 0, 10, 10))); ok {
		t.Error("a tiny picture decodes as a pattern")
	}
}

func TestPatternSourcePacingAndClose(t *testing.T) {
	ps, err := newPatternSource(Source{Device: TestPatternDevice, Width: 320, Height: 240, FrameRate: 50})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 11 {
		if _, _, err := ps.Read(); err != nil {
			t.Fatal(err)
		}
	}
	// 10 intervals of 20 ms; a ticker never runs early.
	if el := time.Since(start); el < 190*time.Millisecond {
		t.Errorf("11 frames at 50 fps took %s, want at least 200 ms", el)
	}
	done := make(chan error)
	go func() {
		var err error
		for err == nil {
			_, _, err = ps.Read()
		}
		done <- err
	}()
	_ = ps.close()
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Errorf("Read after close: %v, want io.EOF", err)
	}
	if _, err := newPatternSource(Source{Width: 64, Height: 48, FrameRate: 30}); !errors.Is(err, errPatternSize) {
		t.Errorf("64x48 pattern: %v, want errPatternSize", err)
	}
}

// TestPatternNoise checks the sensor-like noise: frames differ from the clean
// pattern by at most the configured amount, differently in every frame, the
// bar code and the white square are untouched, and all of it stays in video
// range.
func TestPatternNoise(t *testing.T) {
	const w, h, n = 646, 480, MaxPatternNoise // a width that is not a multiple of 8
	clean, err := newPatternSource(Source{Device: TestPatternDevice, Width: w, Height: h, FrameRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	noisy, err := newPatternSource(Source{Device: TestPatternDevice, Width: w, Height: h, FrameRate: 1000, PatternNoise: n})
	if err != nil {
		t.Fatal(err)
	}
	codeRows := patternCodeRows(w) * CellSize(w)
	var prevDiff []int
	for frame := range 4 {
		ci, _, _ := clean.Read()
		ni, _, _ := noisy.Read()
		cy, ny := ci.(*image.YCbCr).Y, ni.(*image.YCbCr).Y
		if _, ok := DecodePattern(ni); !ok {
			t.Fatalf("frame %d: the noisy pattern's bar code does not decode", frame)
		}
		diff := make([]int, 0, w*h)
		hist := map[int]int{}
		for y := codeRows; y < h; y++ {
			for x := range w {
				c, v := int(cy[y*w+x]), int(ny[y*w+x])
				d := v - c
				if c == 235 && d != 0 {
					t.Fatalf("frame %d: the white square at (%d,%d) got noise %d", frame, x, y, d)
				}
				if d < -n || d > n || v < 16 || v > 235 {
					t.Fatalf("frame %d: pixel (%d,%d) is %d, clean %d: off by more than %d or out of range", frame, x, y, v, c, n)
				}
				diff = append(diff, d)
				hist[d]++
			}
		}
		if len(hist) < 2*n {
			t.Errorf("frame %d: only %d distinct noise values, want most of %d", frame, len(hist), 2*n+1)
		}
		if prevDiff != nil && slices.Equal(prevDiff, diff) {
			t.Errorf("frame %d: same noise as the frame before", frame)
		}
		prevDiff = diff
	}
	for _, v := range []int{n, n + 1, -1} {
		err := (Config{Sources: []Source{{Name: "p", Device: TestPatternDevice, Width: 640, Height: 480, FrameRate: 30, PatternNoise: v}}, Encoder: Encoder{BitRate: 1e6}}).Validate()
		if ok := v >= 0 && v <= n; ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "sources[0].pattern_noise")) {
			t.Errorf("PatternNoise %d: Validate() = %v", v, err)
		}
	}
}
